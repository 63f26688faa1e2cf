//! The broker id: from the config, else from `meta.properties` in the log
//! directories, else generated through the coordinator as Kafka does
//! (`/brokers/seqid` version + `reserved.broker.max.id`). The id is then
//! recorded in every log directory's `meta.properties`, and a directory
//! that belongs to another broker id is refused.

use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use zookeeper_client::Client;

use crate::cluster::znode;
use crate::config::BrokerConfig;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "configured broker.id {configured} does not match {stored} stored in {dir}/meta.properties"
    )]
    Mismatch {
        configured: i32,
        stored: i32,
        dir: String,
    },
    #[error("cannot generate a broker id through the coordinator: {0}")]
    Generate(zookeeper_client::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The broker id, or `None` if shutdown came while waiting for the
/// coordinator to generate one.
pub async fn resolve(
    config: &BrokerConfig,
    connect: &str,
    shutdown: &CancellationToken,
) -> Result<Option<i32>, IdentityError> {
    let mut stored = None;
    for dir in &config.log_dirs {
        if let Some(id) = read_meta(dir)? {
            if config.broker_id >= 0 && id != config.broker_id {
                return Err(IdentityError::Mismatch {
                    configured: config.broker_id,
                    stored: id,
                    dir: dir.display().to_string(),
                });
            }
            stored = Some(id);
        }
    }
    let id = match (config.broker_id, stored) {
        (id, _) if id >= 0 => id,
        (_, Some(id)) => id,
        _ => {
            let generated = tokio::select! {
                _ = shutdown.cancelled() => return Ok(None),
                id = generate(connect, config.reserved_broker_max_id) => id?,
            };
            generated
        }
    };
    for dir in &config.log_dirs {
        std::fs::create_dir_all(dir)?;
        if read_meta(dir)? != Some(id) {
            let tmp = dir.join("meta.properties.tmp");
            std::fs::write(&tmp, format!("version=0\nbroker.id={id}\n"))?;
            std::fs::rename(&tmp, dir.join("meta.properties"))?;
        }
    }
    Ok(Some(id))
}

fn read_meta(dir: &Path) -> Result<Option<i32>, IdentityError> {
    let text = match std::fs::read_to_string(dir.join("meta.properties")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(crate::config::parse_properties(&text)
        .get("broker.id")
        .and_then(|v| v.parse().ok()))
}

async fn generate(connect: &str, reserved: i32) -> Result<i32, IdentityError> {
    let mut backoff = Duration::from_millis(100);
    let client = loop {
        let attempt = async {
            crate::cluster::probe(connect).await?;
            Client::connect(connect).await.map_err(|e| e.to_string())
        };
        match attempt.await {
            Ok(c) => break c,
            Err(cause) => {
                tracing::warn!(connect, cause, retry_in = ?backoff, "waiting for the coordinator to generate a broker id");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    };
    let opts =
        zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
    for path in ["/brokers", znode::BROKER_SEQID] {
        match client.create(path, b"", &opts).await {
            Ok(_) | Err(zookeeper_client::Error::NodeExists) => {}
            Err(e) => return Err(IdentityError::Generate(e)),
        }
    }
    let stat = client
        .set_data(znode::BROKER_SEQID, b"", None)
        .await
        .map_err(IdentityError::Generate)?;
    let id = reserved + stat.version;
    tracing::info!(broker = id, "generated broker id");
    Ok(id)
}
