//! The engine's run loop: a dedicated thread owns the [`Engine`]; handles send requests
//! over a bounded queue (back-pressure, not unbounded memory) and get answers through a
//! callback. The loop takes every request that is waiting (up to `max_batch`) and
//! executes them as one batch — one transaction, one fsync — which is how durable intake
//! reaches tens of thousands of cases per second on SQLite.
//!
//! A writer thread with its own store connection commits: while the writer commits
//! batch N, the engine already decides batch N+1
//! against its (optimistically updated) cache. Answers go out only after their batch is
//! durable. If a commit fails, every batch decided after it is refused by the writer,
//! the engine reloads the cases those batches touched (not every open case) and retries
//! each request of the failed batches alone.
//!
//! Architecture Invariant: the engine is touched only on this thread.
//! Architecture Invariant: no answer is sent before its writes are committed.

use crate::engine::{Engine, EngineError, Prepared, Request, Response};
use crate::store::{Store, StoreError};
use std::sync::mpsc::{
    channel, sync_channel, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError,
};
use std::thread::JoinHandle;
use std::time::Duration;

type Reply = Box<dyn FnOnce(Result<Response, EngineError>) + Send>;
type WriterTask = Box<dyn FnOnce(&mut dyn Store) + Send>;

// Messages live in a bounded queue; boxing the common variant would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Run(Request, Reply),
    /// Runs a closure on the engine thread (reads, admin tasks).
    With(Box<dyn FnOnce(&mut Engine) + Send>),
    /// Runs a closure on the writer's connection once everything before it is committed.
    WithWriter(WriterTask),
    /// Finish what is queued before this, then stop.
    Stop,
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

#[allow(clippy::large_enum_variant)] // one message per batch
enum ToWriter {
    Commit(Prepared, Vec<Reply>),
    Reset,
    With(WriterTask),
}

enum FromWriter {
    Committed(u64),
    /// The batch's own commit failed (`Some`), or it was refused after an earlier failure.
    Failed(Box<Prepared>, Vec<Reply>, Option<StoreError>),
    ResetDone,
}

impl RunLoop {
    /// Starts the loop with a writer thread that commits on `writer` (a second connection
    /// to the engine's database) while the engine decides the next batch.
    pub fn start_pipelined(
        engine: Engine,
        writer: Box<dyn Store>,
        queue: usize,
        max_batch: usize,
    ) -> RunLoop {
        let (tx, rx) = sync_channel::<Msg>(queue);
        let thread = std::thread::Builder::new()
            .name("cityos-engine".into())
            .spawn(move || {
                let (wtx, wrx_writer) = sync_channel::<ToWriter>(2);
                let (back_tx, back_rx) = channel::<FromWriter>();
                let w = std::thread::Builder::new()
                    .name("cityos-writer".into())
                    .spawn(move || writer_loop(writer, wrx_writer, back_tx))
                    .expect("spawn writer thread");
                let mut p = Pipeline {
                    engine,
                    wtx,
                    back: back_rx,
                    in_flight: 0,
                    failed: Vec::new(),
                    stats: LoopStats::default(),
                };
                p.run(rx, max_batch);
                let Pipeline {
                    engine, wtx, stats, ..
                } = p;
                drop(wtx);
                w.join().expect("writer thread panicked");
                (engine, stats)
            })
            .expect("spawn engine thread");
        RunLoop {
            handle: EngineHandle { tx },
            thread,
        }
    }

    /// Stops after every request queued before this call is answered; returns the
    /// engine. Handles still held elsewhere get [`EngineError::Stopped`] afterwards.
    pub fn stop(self) -> (Engine, LoopStats) {
        let _ = self.handle.tx.send(Msg::Stop);
        drop(self.handle);
        self.thread.join().expect("engine thread panicked")
    }
}

/// The most batches the writer joins into one transaction.
const MAX_GROUP: usize = 8;

/// Commits what the engine prepared. Batches that are already waiting when the writer
/// turns to the queue are joined into one transaction (group commit: one sync of the
/// log for all of them); their answers are released only after it is durable.
fn writer_loop(mut store: Box<dyn Store>, rx: Receiver<ToWriter>, back: Sender<FromWriter>) {
    let mut poisoned = false;
    let mut held: Option<ToWriter> = None;
    loop {
        let m = match held.take() {
            Some(m) => m,
            None => match rx.recv() {
                Ok(m) => m,
                Err(_) => return,
            },
        };
        let (p, replies) = match m {
            ToWriter::Reset => {
                poisoned = false;
                if back.send(FromWriter::ResetDone).is_err() {
                    return;
                }
                continue;
            }
            ToWriter::With(f) => {
                f(store.as_mut());
                continue;
            }
            ToWriter::Commit(p, replies) => (p, replies),
        };
        let mut group = vec![(p, replies)];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(ToWriter::Commit(p, r)) => group.push((p, r)),
                Ok(other) => {
                    held = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        let r = if poisoned {
            Err(None)
        } else {
            let writing: Vec<&Prepared> = group
                .iter()
                .map(|(p, _)| p)
                .filter(|p| p.writes())
                .collect();
            if writing.is_empty() {
                Ok(())
            } else {
                Prepared::commit_all(&writing, store.as_mut()).map_err(Some)
            }
        };
        let events: Vec<FromWriter> = match r {
            Ok(()) => group
                .into_iter()
                .map(|(mut p, replies)| {
                    for (reply, answer) in replies.into_iter().zip(p.answers.drain(..)) {
                        reply(answer);
                    }
                    FromWriter::Committed(p.seq)
                })
                .collect(),
            Err(e) => {
                poisoned = true;
                // The error belongs to a batch only when it was committed alone; batches
                // of a failed group are all retried one request at a time.
                let mut e = if group.len() == 1 { e } else { None };
                group
                    .into_iter()
                    .map(|(p, replies)| FromWriter::Failed(Box::new(p), replies, e.take()))
                    .collect()
            }
        };
        for ev in events {
            if back.send(ev).is_err() {
                return;
            }
        }
    }
}

struct Pipeline {
    engine: Engine,
    wtx: SyncSender<ToWriter>,
    back: Receiver<FromWriter>,
    in_flight: usize,
    failed: Vec<(Prepared, Vec<Reply>, Option<StoreError>)>,
    stats: LoopStats,
}

impl Pipeline {
    fn run(&mut self, rx: Receiver<Msg>, max_batch: usize) {
        let mut stopping = false;
        while !stopping {
            self.poll();
            let first = match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut reqs = Vec::new();
            let mut replies: Vec<Reply> = Vec::new();
            let mut pending = Some(first);
            loop {
                match pending.take() {
                    Some(Msg::Stop) => {
                        stopping = true;
                        break;
                    }
                    Some(Msg::Run(r, reply)) => {
                        reqs.push(r);
                        replies.push(reply);
                    }
                    Some(Msg::With(f)) => {
                        self.send(&mut reqs, &mut replies);
                        self.wait_idle();
                        f(&mut self.engine);
                    }
                    Some(Msg::WithWriter(f)) => {
                        self.send(&mut reqs, &mut replies);
                        self.wait_idle();
                        self.wtx
                            .send(ToWriter::With(f))
                            .expect("writer thread alive");
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
            self.send(&mut reqs, &mut replies);
        }
        self.wait_idle();
    }

    fn send(&mut self, reqs: &mut Vec<Request>, replies: &mut Vec<Reply>) {
        if reqs.is_empty() {
            return;
        }
        if self.engine.is_broken() {
            // A reload failed earlier (the store was unreachable), or a batch could not
            // get its event numbers: reload before deciding, once what is in flight is
            // settled (a reload must not overtake a commit).
            self.wait_idle();
            if let Err(e) = self.engine.ensure_healthy() {
                let e = match e {
                    EngineError::Store(s) => s,
                    other => StoreError::Db(other.to_string()),
                };
                reqs.clear();
                for reply in replies.drain(..) {
                    reply(Err(EngineError::Store(e.clone())));
                }
                return;
            }
        }
        self.stats.batches += 1;
        self.stats.requests += reqs.len() as u64;
        self.stats.largest_batch = self.stats.largest_batch.max(reqs.len());
        let p = self.engine.prepare(std::mem::take(reqs));
        self.in_flight += 1;
        self.wtx
            .send(ToWriter::Commit(p, std::mem::take(replies)))
            .expect("writer thread alive");
    }

    fn handle(&mut self, ev: FromWriter) {
        match ev {
            FromWriter::Committed(seq) => {
                self.in_flight -= 1;
                self.engine.committed(seq);
            }
            FromWriter::Failed(p, r, e) => {
                self.in_flight -= 1;
                self.failed.push((*p, r, e));
            }
            FromWriter::ResetDone => {}
        }
    }

    /// Takes what the writer reported; recovers from failures.
    fn poll(&mut self) {
        while let Ok(ev) = self.back.try_recv() {
            self.handle(ev);
        }
        if !self.failed.is_empty() {
            self.recover();
        }
    }

    fn wait_idle(&mut self) {
        while self.in_flight > 0 {
            let ev = self.back.recv().expect("writer thread alive");
            self.handle(ev);
        }
        if !self.failed.is_empty() {
            self.recover();
        }
    }

    fn reset_writer(&mut self) {
        self.wtx.send(ToWriter::Reset).expect("writer thread alive");
        loop {
            match self.back.recv().expect("writer thread alive") {
                FromWriter::ResetDone => return,
                ev => self.handle(ev),
            }
        }
    }

    fn recover(&mut self) {
        // Every batch decided after the failure comes back refused.
        while self.in_flight > 0 {
            let ev = self.back.recv().expect("writer thread alive");
            self.handle(ev);
        }
        self.reset_writer();
        let mut failed = std::mem::take(&mut self.failed);
        failed.sort_by_key(|(p, _, _)| p.seq);
        let mut all_replies = Vec::new();
        let mut packages = Vec::new();
        for (p, r, e) in failed {
            all_replies.extend(r);
            packages.push((p, e));
        }
        let (wtx, back) = (self.wtx.clone(), &self.back);
        let answers = self.engine.recover_failed(packages, |engine, req| {
            let p = engine.prepare(vec![req]);
            let (atx, arx) = sync_channel(1);
            let reply: Reply = Box::new(move |a| {
                let _ = atx.send(a);
            });
            wtx.send(ToWriter::Commit(p, vec![reply]))
                .map_err(|_| EngineError::Stopped)?;
            loop {
                match back.recv().map_err(|_| EngineError::Stopped)? {
                    FromWriter::Committed(seq) => {
                        engine.committed(seq);
                        return arx.recv().map_err(|_| EngineError::Stopped)?;
                    }
                    FromWriter::Failed(p, _, e) => {
                        let _ = wtx.send(ToWriter::Reset);
                        while !matches!(back.recv(), Ok(FromWriter::ResetDone) | Err(_)) {}
                        engine.reload_cases(p.touched())?;
                        return Err(e
                            .unwrap_or_else(|| StoreError::Db("commit refused".into()))
                            .into());
                    }
                    FromWriter::ResetDone => {}
                }
            }
        });
        for (reply, answer) in all_replies.into_iter().zip(answers) {
            reply(answer);
        }
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

    /// Runs a closure on the writer's store connection, after everything queued before it
    /// is committed, and returns its result (administration; tests cap the database's
    /// size with it).
    pub fn with_writer<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> T + Send + 'static,
    ) -> Result<T, EngineError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.tx
            .send(Msg::WithWriter(Box::new(move |s| {
                let _ = tx.send(f(s));
            })))
            .map_err(|_| EngineError::Stopped)?;
        rx.recv().map_err(|_| EngineError::Stopped)
    }

    /// Queues a closure for the engine thread without waiting for it; `false` when the
    /// queue is full (nothing queued).
    pub fn try_post(
        &self,
        f: impl FnOnce(&mut Engine) + Send + 'static,
    ) -> Result<bool, EngineError> {
        match self.tx.try_send(Msg::With(Box::new(f))) {
            Ok(()) => Ok(true),
            Err(TrySendError::Full(_)) => Ok(false),
            Err(TrySendError::Disconnected(_)) => Err(EngineError::Stopped),
        }
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
