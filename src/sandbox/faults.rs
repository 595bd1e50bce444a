//! Seeded fault injection on writes: for the same seed and the same sequence of writes the same
//! faults fire. Also holds the state of a running 429 burst.
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::config::{FaultKind, Faults};

pub struct FaultState {
    cfg: Faults,
    rng: StdRng,
    /// 429s still to send in the current burst.
    burst_left: u32,
}

impl FaultState {
    pub fn new(cfg: Faults) -> FaultState {
        let rng = StdRng::seed_from_u64(cfg.seed);
        FaultState {
            cfg,
            rng,
            burst_left: 0,
        }
    }

    /// Whether this request falls into a running 429 burst (and consumes one slot of it).
    pub fn in_burst(&mut self) -> bool {
        if self.burst_left > 0 {
            self.burst_left -= 1;
            true
        } else {
            false
        }
    }

    /// Roll the dice for a write.
    pub fn roll(&mut self) -> Option<FaultKind> {
        if self.cfg.kinds.is_empty() || self.cfg.rate <= 0.0 {
            return None;
        }
        if !self.rng.random_bool(self.cfg.rate.min(1.0)) {
            return None;
        }
        let kind = self.cfg.kinds[self.rng.random_range(0..self.cfg.kinds.len())];
        if kind == FaultKind::Burst429 {
            self.burst_left = self.cfg.burst_len.saturating_sub(1);
        }
        Some(kind)
    }

    pub fn reset(&mut self) {
        *self = FaultState::new(self.cfg.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults() {
        let cfg = Faults {
            rate: 0.3,
            kinds: vec![FaultKind::Before, FaultKind::After, FaultKind::Drop],
            seed: 42,
            burst_len: 3,
        };
        let mut a = FaultState::new(cfg.clone());
        let mut b = FaultState::new(cfg);
        let ra: Vec<_> = (0..200).map(|_| a.roll()).collect();
        let rb: Vec<_> = (0..200).map(|_| b.roll()).collect();
        assert_eq!(ra, rb);
        let fired = ra.iter().filter(|f| f.is_some()).count();
        assert!(
            (30..90).contains(&fired),
            "{fired} faults out of 200 at p=0.3"
        );
    }

    #[test]
    fn burst_covers_the_next_requests() {
        let mut f = FaultState::new(Faults {
            rate: 1.0,
            kinds: vec![FaultKind::Burst429],
            seed: 1,
            burst_len: 3,
        });
        assert_eq!(f.roll(), Some(FaultKind::Burst429));
        assert!(f.in_burst());
        assert!(f.in_burst());
        assert!(!f.in_burst());
    }
}
