//! Run reports: failures.csv, results.csv, plan.jsonl, summary.json.
