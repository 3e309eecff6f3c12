//! The engine's own Tokio runtime. A costs query is CPU work for as long as it runs; on the runtime that
//! serves requests it would hold workers that pings, token checks and small reads need. Queries run here
//! instead, one worker per core (DataFusion spreads a query over as many partitions), and the request
//! side only awaits the answer.

use std::future::Future;
use std::sync::OnceLock;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
            .thread_name("costd-engine")
            .enable_all()
            .build()
            .expect("the engine runtime starts")
    })
}

/// Runs `work` on the engine runtime. Dropping the returned future (a time-out, a client gone) stops it.
pub async fn run<T: Send + 'static>(work: impl Future<Output = T> + Send + 'static) -> anyhow::Result<T> {
    struct AbortOnDrop(tokio::task::AbortHandle);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let handle = runtime().spawn(work);
    let _abort = AbortOnDrop(handle.abort_handle());
    handle.await.map_err(|e| anyhow::anyhow!("the engine task failed: {e}"))
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn work_runs_off_the_callers_runtime_and_stops_when_dropped() {
        let name = super::run(async { std::thread::current().name().map(str::to_string) }).await.unwrap();
        assert_eq!(name.as_deref(), Some("costd-engine"));

        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let slow = super::run(async move {
            let _tx = tx; // dropped when the task is aborted
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        });
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), slow).await.is_err());
        assert!(rx.await.is_err(), "the abandoned task was stopped");
    }
}
