package koala4j.server;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import java.util.function.Function;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import koala4j.pipelines.Cancel;

/**
 * One admitted piece of work: its state, its result future, and the events its subscribers see (progress step i
 * of n, stage times, then done or error). Cancelled by {@link #cancel} (a client that went away, DELETE) or by
 * its deadline; the worker notices between denoising steps.
 */
final class Job<T> {

    enum State { QUEUED, RUNNING, DONE, FAILED, CANCELLED, TIMEOUT;

        boolean finished() {
            return this != QUEUED && this != RUNNING;
        }

        String label() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** An event as sent over SSE: its name and JSON data. */
    record Event(String name, ObjectNode data) {
    }

    final String id;
    final String kind;
    final String model;
    final boolean anonymous;
    final long createdMs = System.currentTimeMillis();
    final long admittedNanos = System.nanoTime();
    final long deadlineNanos;
    final CompletableFuture<T> result = new CompletableFuture<>();
    private final Function<T, JsonNode> summary;
    private final List<Consumer<Event>> listeners = new CopyOnWriteArrayList<>();
    private volatile State state = State.QUEUED;
    private volatile String cancelReason;
    private volatile Event lastProgress;
    private volatile Event terminal;
    private volatile ApiError error;
    private Thread waitingThread;

    Job(String id, String kind, String model, boolean anonymous, long timeoutNanos, Function<T, JsonNode> summary) {
        this.id = id;
        this.kind = kind;
        this.model = model;
        this.anonymous = anonymous;
        this.deadlineNanos = admittedNanos + timeoutNanos;
        this.summary = summary;
    }

    State state() {
        return state;
    }

    ApiError error() {
        return error;
    }

    /** The model as clients may see it: hidden for blind-battle jobs. */
    String visibleModel() {
        return anonymous ? null : model;
    }

    boolean expired() {
        return System.nanoTime() - deadlineNanos > 0;
    }

    /** What the pipeline polls between steps. */
    final Cancel cancel = () -> cancelReason != null || expired();

    String cancelReason() {
        return cancelReason;
    }

    /** Asks the job to stop; a job still waiting for a worker stops at once. */
    synchronized void cancel(String reason) {
        if (cancelReason == null && !state.finished()) {
            cancelReason = reason;
            if (state == State.QUEUED && waitingThread != null) {
                waitingThread.interrupt();
            }
        }
    }

    synchronized void waitingOn(Thread thread) {
        waitingThread = thread;
    }

    /** Called by the worker once it holds a worker slot; false when the job was cancelled meanwhile. */
    synchronized boolean start() {
        waitingThread = null;
        Thread.interrupted();
        if (cancelReason != null) {
            return false;
        }
        state = State.RUNNING;
        return true;
    }

    void progress(int step, int total) {
        ObjectNode data = Http.JSON.createObjectNode().put("job", id).put("step", step).put("total", total);
        Event e = new Event("progress", data);
        lastProgress = e;
        publish(e);
    }

    void stage(String name, double seconds) {
        publish(new Event("stage", Http.JSON.createObjectNode().put("job", id).put("stage", name).put("seconds", seconds)));
    }

    void succeed(T value) {
        state = State.DONE;
        ObjectNode data = Http.JSON.createObjectNode().put("job", id);
        data.set("result", summary.apply(value));
        terminal = new Event("done", data);
        result.complete(value);
        publish(terminal);
        listeners.clear();
    }

    void fail(State end, ApiError e) {
        state = end;
        error = e;
        ObjectNode data = Http.JSON.createObjectNode().put("job", id).put("status", end.label());
        data.set("error", Http.errorBody(e).get("error"));
        terminal = new Event("error", data);
        result.completeExceptionally(e);
        publish(terminal);
        listeners.clear();
    }

    JsonNode summary() {
        return result.isDone() && !result.isCompletedExceptionally() ? summary.apply(result.join()) : null;
    }

    int step() {
        Event p = lastProgress;
        return p == null ? 0 : p.data().get("step").asInt();
    }

    int total() {
        Event p = lastProgress;
        return p == null ? 0 : p.data().get("total").asInt();
    }

    /**
     * Subscribes to this job's events; the latest progress and, for a finished job, its end are replayed first.
     * Returns what unsubscribes.
     */
    Runnable subscribe(Consumer<Event> listener) {
        listeners.add(listener);
        Event p = lastProgress;
        if (p != null) {
            listener.accept(p);
        }
        Event t = terminal;
        if (t != null) {
            listeners.remove(listener);
            listener.accept(t);
        }
        return () -> listeners.remove(listener);
    }

    boolean hasListeners() {
        return !listeners.isEmpty();
    }

    private void publish(Event e) {
        for (Consumer<Event> l : listeners) {
            l.accept(e);
        }
    }
}
