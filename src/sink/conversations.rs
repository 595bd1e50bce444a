//! The `--conversations` file of an export: every exported contact's conversations (the 20 most
//! recent, one request per contact, several at once), one a line with its `contact_id`, written
//! atomically like the export itself.
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use futures::StreamExt;
use serde_json::Value;

use super::atomic::AtomicFile;
use super::manifest::{Conversations, file_name};
use crate::api::{ApiError, Client};

/// Every contact's conversations to `path`, temporary until the caller commits the file (a
/// device or a pipe is written into at the commit, never renamed over, as for the export).
pub async fn write(
    client: &Client,
    path: &Path,
    ids: &[u64],
    concurrency: usize,
) -> anyhow::Result<(AtomicFile, Conversations)> {
    let mut file = AtomicFile::for_dest(&super::atomic::Dest::resolve(path)?)?;
    let cannot_write = || format!("{}: cannot write", path.display());
    let (mut rows, mut gone) = (0, 0);
    {
        let mut w = file.writer();
        let mut lists = futures::stream::iter(ids.iter().copied())
            .map(|id| async move { (id, client.contacts().conversations(id).await) })
            .buffered(concurrency.max(1));
        while let Some((id, res)) = lists.next().await {
            let convs = match res {
                Ok(c) => c,
                // Deleted since it was listed: it has no conversations any more.
                Err(ApiError::NotFound { .. }) => {
                    gone += 1;
                    continue;
                }
                Err(e) => {
                    let e = anyhow::Error::new(e);
                    return Err(e.context(format!("conversations of contact {id}")));
                }
            };
            for conv in convs {
                let mut v = serde_json::to_value(&conv).expect("serializable");
                if let Value::Object(o) = &mut v {
                    o.insert("contact_id".into(), Value::from(id));
                }
                serde_json::to_writer(&mut w, &v).with_context(cannot_write)?;
                w.write_all(b"\n").with_context(cannot_write)?;
                rows += 1;
            }
        }
        w.flush().with_context(cannot_write)?;
    }
    let sha256 = file.sha256()?;
    let c = Conversations {
        file: file_name(path),
        rows,
        contacts_gone: gone,
        sha256,
    };
    Ok((file, c))
}
