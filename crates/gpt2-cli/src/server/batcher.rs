//! Continuous batching: one engine thread owns the model and decodes every running request together.
//!
//! The loop (Orca-style iteration-level scheduling, Yu et al. 2022; vLLM's scheduler without paging):
//! 1. admit waiting jobs in arrival order while their sequences fit in `max_batch` (a job that does
//!    not fit waits at the head of the queue, so big requests are not starved by small ones; a job
//!    is always admitted into an empty batch);
//! 2. drop the sequences of jobs whose client has gone (its receiver is closed);
//! 3. call [`gpt2::generate::step`] once: one batched forward pass advances every active sequence by
//!    one token, prefilling the ones admitted in (1) in the same pass;
//! 4. send each token to its job's channel; a failed send (client gone) drops the job's sequences;
//!    finished sequences leave the batch and the next step admits whoever is waiting.
//!
//! Requests talk to the engine only through channels: a [`Job`] in (a `std` channel, bounded by the
//! `max_queue` counter) and [`Event`]s out (an unbounded `tokio` channel: a job produces at most
//! `choices × max_tokens` events, so memory is bounded, and the engine never blocks on a slow
//! client). The engine never touches the network and the handlers never touch the model.
//!
//! Sampling is per sequence (its own seeded RNG), so a request's tokens do not depend on what it is
//! batched with, up to float rounding of the batched matrix multiply.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;

use gpt2::generate::{step, Finished, Sequence, TokenOut};
use gpt2::tokenizer::Tokenizer;
use gpt2::Model;
use tokio::sync::mpsc::UnboundedSender;

/// What the engine sends back for a job.
#[derive(Debug)]
pub enum Event {
    /// The next token of choice `choice`; `token.finished` is set on its last one.
    Token {
        /// Index into the job's sequences.
        choice: usize,
        /// Id, streamed text, logprobs.
        token: TokenOut,
    },
    /// Choice `choice` was finished before generating anything (`max_tokens` 0 with `echo`).
    Done {
        /// Index into the job's sequences.
        choice: usize,
        /// Why.
        finished: Finished,
    },
    /// The engine failed; the job is over.
    Error(String),
}

/// A request's sequences and the channel its events go to.
pub struct Job {
    /// One per choice.
    pub seqs: Vec<Sequence>,
    /// Where tokens go; when the receiver is dropped the job is cancelled.
    pub tx: UnboundedSender<Event>,
}

/// Counters for `/health` and the tests. All relaxed: they are statistics, not synchronization.
#[derive(Debug, Default)]
pub struct Stats {
    /// Jobs submitted and not yet admitted.
    pub queued: AtomicUsize,
    /// Jobs admitted and not finished.
    pub active_jobs: AtomicUsize,
    /// Sequences in the running batch.
    pub active_seqs: AtomicUsize,
    /// Largest batch a step has run.
    pub peak_batch: AtomicUsize,
    /// Forward passes run.
    pub steps: AtomicU64,
    /// Tokens generated.
    pub tokens: AtomicU64,
    /// Jobs completed normally.
    pub completed: AtomicU64,
    /// Jobs dropped because their client went away.
    pub cancelled: AtomicU64,
}

/// Why [`Batcher::submit`] refused a job.
#[derive(Debug)]
pub enum SubmitError {
    /// `max_queue` jobs are already waiting.
    QueueFull(usize),
    /// The engine thread has stopped.
    Stopped,
}

/// The handlers' side: submits jobs to the engine thread.
pub struct Batcher {
    tx: Sender<Job>,
    max_queue: usize,
    /// Shared counters.
    pub stats: Arc<Stats>,
}

impl Batcher {
    /// Starts the engine thread. It runs until every [`Batcher`] clone's sender is dropped and the
    /// running batch is empty; join the handle to wait for it.
    pub fn start(
        model: Arc<Model>,
        tok: Tokenizer,
        max_batch: usize,
        max_queue: usize,
    ) -> std::io::Result<(Self, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(Stats::default());
        let engine = Engine {
            model,
            tok,
            rx,
            max_batch: max_batch.max(1),
            stats: Arc::clone(&stats),
            active: Vec::new(),
            jobs: HashMap::new(),
            waiting: None,
            next_id: 0,
        };
        let handle = std::thread::Builder::new()
            .name("gpt2-engine".into())
            .spawn(move || engine.run())?;
        Ok((
            Self {
                tx,
                max_queue,
                stats,
            },
            handle,
        ))
    }

    /// Queues a job, or refuses it when `max_queue` jobs are already waiting.
    pub fn submit(&self, job: Job) -> Result<(), SubmitError> {
        let before = self.stats.queued.fetch_add(1, Ordering::SeqCst);
        if before >= self.max_queue {
            self.stats.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(SubmitError::QueueFull(before));
        }
        self.tx.send(job).map_err(|_| {
            self.stats.queued.fetch_sub(1, Ordering::SeqCst);
            SubmitError::Stopped
        })
    }
}

/// A sequence in the running batch.
struct Slot {
    job: u64,
    choice: usize,
    seq: Sequence,
}

struct Engine {
    model: Arc<Model>,
    tok: Tokenizer,
    rx: Receiver<Job>,
    max_batch: usize,
    stats: Arc<Stats>,
    /// The running batch.
    active: Vec<Slot>,
    /// Channel and number of unfinished sequences of each admitted job.
    jobs: HashMap<u64, (UnboundedSender<Event>, usize)>,
    /// The head of the queue when it did not fit.
    waiting: Option<Job>,
    next_id: u64,
}

impl Engine {
    fn run(mut self) {
        loop {
            if !self.admit() {
                return;
            }
            self.drop_cancelled();
            if self.active.is_empty() {
                continue;
            }
            self.step();
        }
    }

    /// Moves waiting jobs into the batch. Blocks while there is nothing to do. Returns false when
    /// the server is gone and nothing is running.
    fn admit(&mut self) -> bool {
        loop {
            let job = if let Some(job) = self.waiting.take() {
                job
            } else if self.active.is_empty() {
                match self.rx.recv() {
                    Ok(job) => job,
                    Err(_) => return false,
                }
            } else {
                match self.rx.try_recv() {
                    Ok(job) => job,
                    Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => return true,
                }
            };
            if job.tx.is_closed() {
                self.stats.queued.fetch_sub(1, Ordering::SeqCst);
                self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let live = job.seqs.iter().filter(|s| s.finished().is_none()).count();
            if !self.active.is_empty() && self.active.len() + live > self.max_batch {
                self.waiting = Some(job);
                return true;
            }
            self.stats.queued.fetch_sub(1, Ordering::SeqCst);
            let id = self.next_id;
            self.next_id += 1;
            // Counters move before the last event goes out: a client that reads its answer and
            // then asks /health must see its request counted.
            if live > 0 {
                self.stats.active_jobs.fetch_add(1, Ordering::Relaxed);
            } else {
                self.stats.completed.fetch_add(1, Ordering::Relaxed);
            }
            for (choice, seq) in job.seqs.into_iter().enumerate() {
                match seq.finished() {
                    Some(finished) => {
                        let _ = job.tx.send(Event::Done { choice, finished });
                    }
                    None => self.active.push(Slot {
                        job: id,
                        choice,
                        seq,
                    }),
                }
            }
            if live > 0 {
                self.jobs.insert(id, (job.tx, live));
            }
        }
    }

    /// Drops the sequences of jobs whose receiver is gone.
    fn drop_cancelled(&mut self) {
        let gone: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, (tx, _))| tx.is_closed())
            .map(|(&id, _)| id)
            .collect();
        for id in gone {
            self.cancel(id);
        }
    }

    fn cancel(&mut self, id: u64) {
        if self.jobs.remove(&id).is_some() {
            self.active.retain(|s| s.job != id);
            self.stats.active_jobs.fetch_sub(1, Ordering::Relaxed);
            self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One batched forward pass; tokens to their jobs; finished sequences leave.
    fn step(&mut self) {
        let n = self.active.len();
        self.stats.active_seqs.store(n, Ordering::Relaxed);
        self.stats.peak_batch.fetch_max(n, Ordering::Relaxed);
        self.stats.steps.fetch_add(1, Ordering::Relaxed);
        let result = {
            let mut refs: Vec<&mut Sequence> = self.active.iter_mut().map(|s| &mut s.seq).collect();
            step(&self.model, &self.tok, &mut refs)
        };
        let outs = match result {
            Ok(outs) => outs,
            Err(e) => {
                // Not reachable for validated requests; fail every running job rather than loop.
                let msg = format!("generation failed: {e}");
                eprintln!("gpt2 serve: engine error: {msg}");
                for (_, (tx, _)) in self.jobs.drain() {
                    let _ = tx.send(Event::Error(msg.clone()));
                }
                self.stats.active_jobs.store(0, Ordering::Relaxed);
                self.active.clear();
                return;
            }
        };
        self.stats
            .tokens
            .fetch_add(outs.len() as u64, Ordering::Relaxed);
        let mut gone = Vec::new();
        for (i, token) in outs {
            let slot = &self.active[i];
            let done = token.finished.is_some();
            let Some((tx, left)) = self.jobs.get_mut(&slot.job) else {
                continue;
            };
            let event = Event::Token {
                choice: slot.choice,
                token,
            };
            if done && *left == 1 {
                // The job's last event: count it complete before the client can see the answer
                // (and ask /health), then send; a client already gone makes it a cancellation.
                let (tx, _) = self.jobs.remove(&slot.job).expect("job looked up above");
                self.stats.active_jobs.fetch_sub(1, Ordering::Relaxed);
                self.stats.completed.fetch_add(1, Ordering::Relaxed);
                if tx.send(event).is_err() {
                    self.stats.completed.fetch_sub(1, Ordering::Relaxed);
                    self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            if tx.send(event).is_err() {
                gone.push(slot.job);
                continue;
            }
            if done {
                *left -= 1;
            }
        }
        self.active.retain(|s| s.seq.finished().is_none());
        for id in gone {
            self.cancel(id);
        }
        self.stats
            .active_seqs
            .store(self.active.len(), Ordering::Relaxed);
    }
}
