//! Serving the router on a socket. Connections are served with hyper directly (not `axum::serve`) so
//! that a `drop` fault can close one connection without answering: each connection task races the
//! hyper connection against a [`ConnKill`] signal the gate fires, and dropping the connection future
//! closes the socket with no response written.
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tower_service::Service;

use super::stats::Stats;
use super::{SandboxConfig, SandboxState, router};

/// Put in every request's extensions by the server: notifying it closes the request's connection.
#[derive(Clone)]
pub struct ConnKill(pub Arc<Notify>);

/// A running sandbox. Dropping it without [`SandboxHandle::shutdown`] leaves the server running
/// until the runtime ends.
pub struct SandboxHandle {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    pub admin_token: String,
    pub agent_token: String,
    pub account_id: u64,
    pub addr: SocketAddr,
    state: SandboxState,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Start a sandbox on 127.0.0.1 (`config.port`, 0 for any free port).
pub async fn spawn(config: SandboxConfig) -> anyhow::Result<SandboxHandle> {
    let port = config.port;
    let state = SandboxState::new(config)?;
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    let (shutdown, rx) = watch::channel(false);
    let app = router(state.clone());
    let task = tokio::spawn(serve(listener, app, rx));
    let c = state.config();
    Ok(SandboxHandle {
        base_url: format!("http://{addr}"),
        admin_token: c.admin_token.clone(),
        agent_token: c.agent_token.clone(),
        account_id: c.account_id,
        addr,
        shutdown,
        task,
        state,
    })
}

async fn serve(listener: TcpListener, app: Router, mut shutdown: watch::Receiver<bool>) {
    // Every connection task holds a sender; when all are gone, every connection has finished.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let Ok((stream, _peer)) = accepted else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let kill = Arc::new(Notify::new());
        let app = app.clone();
        let k = kill.clone();
        let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnKill(k.clone()));
            let mut app = app.clone();
            async move { app.call(req.map(axum::body::Body::new)).await }
        });
        let mut shutdown = shutdown.clone();
        let alive = alive_tx.clone();
        tokio::spawn(async move {
            let _alive = alive;
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                // Dropping `conn` closes the socket without writing a response.
                _ = kill.notified() => {}
                _ = shutdown.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(alive_tx);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), alive_rx.recv()).await;
}

impl SandboxHandle {
    /// Stop accepting, let in-flight requests finish, then save the state if `save_file` is set.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.task.await.context("the sandbox server task failed")?;
        if let Some(path) = &self.state.config().save_file {
            self.state.save(path)?;
        }
        Ok(())
    }

    /// The shared state (the same one the server uses).
    pub fn state(&self) -> &SandboxState {
        &self.state
    }

    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    pub fn contacts(&self) -> Vec<serde_json::Value> {
        self.state.contacts()
    }

    pub fn notes(&self) -> Vec<serde_json::Value> {
        self.state.notes()
    }

    /// Forget every contact, note and conversation and zero the counters.
    pub fn reset(&self) {
        self.state.reset()
    }

    /// Zero the counters and the request log; the data stays.
    pub fn reset_stats(&self) {
        self.state.reset_stats()
    }

    /// Insert a contact as a seed line would (no validation, not counted); returns its id.
    pub fn insert_contact(
        &self,
        account_id: u64,
        contact: &serde_json::Value,
    ) -> anyhow::Result<u64> {
        self.state.insert_contact(account_id, contact)
    }
}
