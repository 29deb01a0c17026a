import NIOCore

/// A task executor that runs jobs on one event loop: a connection's request task, and every
/// resumption of it (after the log commit on the writer thread, after curl's reply on its
/// thread), runs on the loop that owns the connection's channel. Without it a resumption goes
/// to whichever loop the global executor picks, and every read and write of the channel then
/// hops back to the owning loop with a wake-up each way.
final class ChannelLoopExecutor: TaskExecutor {
    let loop: any EventLoop

    init(_ loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
