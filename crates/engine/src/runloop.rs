//! The engine's run loop: a dedicated thread owns the [`Engine`]; handles send requests
//! over a bounded queue (back-pressure, not unbounded memory) and get answers through a
//! callback. The loop takes every request that is waiting (up to `max_batch`) and
//! executes them as one batch — one transaction, one fsync — which is how durable intake
//! reaches tens of thousands of cases per second on SQLite.
//!
//! Architecture Invariant: the engine is touched only on this thread.

use crate::engine::{Engine, EngineError, Request, Response};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

type Reply = Box<dyn FnOnce(Result<Response, EngineError>) + Send>;

// Messages live in a bounded queue; boxing the common variant would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Run(Request, Reply),
    /// Runs a closure on the engine thread (reads, admin tasks).
    With(Box<dyn FnOnce(&mut Engine) + Send>),
}

/// A cloneable handle to a running engine.
#[derive(Clone)]
pub struct EngineHandle {
    tx: SyncSender<Msg>,
}

/// Statistics of a finished run loop.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LoopStats {
    pub batches: u64,
    pub requests: u64,
    pub largest_batch: usize,
}

pub struct RunLoop {
    pub handle: EngineHandle,
    thread: JoinHandle<(Engine, LoopStats)>,
}

impl RunLoop {
    /// Starts the loop. `queue` bounds the requests waiting; `max_batch` bounds a batch.
    pub fn start(engine: Engine, queue: usize, max_batch: usize) -> RunLoop {
        let (tx, rx) = sync_channel::<Msg>(queue);
        let thread = std::thread::Builder::new()
            .name("cityos-engine".into())
            .spawn(move || run(engine, rx, max_batch))
            .expect("spawn engine thread");
        RunLoop {
            handle: EngineHandle { tx },
            thread,
        }
    }

    /// Stops after every queued request is answered; returns the engine.
    pub fn stop(self) -> (Engine, LoopStats) {
        drop(self.handle);
        self.thread.join().expect("engine thread panicked")
    }
}

fn run(mut engine: Engine, rx: Receiver<Msg>, max_batch: usize) -> (Engine, LoopStats) {
    let mut stats = LoopStats::default();
    while let Ok(first) = rx.recv() {
        let mut reqs = Vec::new();
        let mut replies: Vec<Reply> = Vec::new();
        let mut pending = Some(first);
        loop {
            match pending.take() {
                Some(Msg::Run(r, reply)) => {
                    reqs.push(r);
                    replies.push(reply);
                }
                Some(Msg::With(f)) => {
                    // Keep order: finish the batch so far, then run the closure.
                    flush(&mut engine, &mut reqs, &mut replies, &mut stats);
                    f(&mut engine);
                }
                None => {}
            }
            if reqs.len() >= max_batch {
                break;
            }
            match rx.try_recv() {
                Ok(m) => pending = Some(m),
                Err(_) => break,
            }
        }
        flush(&mut engine, &mut reqs, &mut replies, &mut stats);
    }
    (engine, stats)
}

fn flush(
    engine: &mut Engine,
    reqs: &mut Vec<Request>,
    replies: &mut Vec<Reply>,
    stats: &mut LoopStats,
) {
    if reqs.is_empty() {
        return;
    }
    stats.batches += 1;
    stats.requests += reqs.len() as u64;
    stats.largest_batch = stats.largest_batch.max(reqs.len());
    let answers = engine.execute(std::mem::take(reqs));
    for (reply, answer) in replies.drain(..).zip(answers) {
        reply(answer);
    }
}

impl EngineHandle {
    /// Queues a request; `reply` is called on the engine thread with the answer.
    /// Blocks while the queue is full.
    pub fn send(
        &self,
        req: Request,
        reply: impl FnOnce(Result<Response, EngineError>) + Send + 'static,
    ) -> Result<(), EngineError> {
        self.tx
            .send(Msg::Run(req, Box::new(reply)))
            .map_err(|_| EngineError::Stopped)
    }

    /// Like `send`, but refuses instead of blocking when the queue is full.
    pub fn try_send(
        &self,
        req: Request,
        reply: impl FnOnce(Result<Response, EngineError>) + Send + 'static,
    ) -> Result<bool, EngineError> {
        match self.tx.try_send(Msg::Run(req, Box::new(reply))) {
            Ok(()) => Ok(true),
            Err(TrySendError::Full(_)) => Ok(false),
            Err(TrySendError::Disconnected(_)) => Err(EngineError::Stopped),
        }
    }

    /// Sends a request and waits for its answer.
    pub fn call(&self, req: Request) -> Result<Response, EngineError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.send(req, move |a| {
            let _ = tx.send(a);
        })?;
        rx.recv().map_err(|_| EngineError::Stopped)?
    }

    /// Runs a closure on the engine thread and returns its result.
    pub fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine) -> T + Send + 'static,
    ) -> Result<T, EngineError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.tx
            .send(Msg::With(Box::new(move |e| {
                let _ = tx.send(f(e));
            })))
            .map_err(|_| EngineError::Stopped)?;
        rx.recv().map_err(|_| EngineError::Stopped)
    }
}
