package androidx.work;

import android.content.Context;
import androidx.lifecycle.LiveData;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

// Runs enqueued work on background threads in this process: ENQUEUED ->
// RUNNING -> SUCCEEDED/FAILED, Result.retry() re-runs after the request's
// backoff, cancel stops unfinished work. Observers of a tag see every state and
// progress change. Constraints are always met (loopback); nothing persists.
public final class WorkManager {

    private static WorkManager instance;

    private final Context context;
    private final ScheduledExecutorService pool = Executors.newScheduledThreadPool(4, (r) -> {
        Thread t = new Thread(r, "work");
        t.setDaemon(true);
        return t;
    });
    private final List<Spec> specs = new ArrayList<>();
    private final Map<String, LiveData<List<WorkInfo>>> tagLiveData = new ConcurrentHashMap<>();

    private WorkManager(Context context) {
        this.context = context.getApplicationContext();
    }

    public static synchronized void initialize(Context context, Configuration config) {
        if (instance != null) {
            throw new IllegalStateException("WorkManager is already initialized");
        }
        instance = new WorkManager(context);
    }

    public static synchronized WorkManager getInstance(Context context) {
        if (instance == null) {
            instance = new WorkManager(context);
        }
        return instance;
    }

    final class Spec {

        final UUID id;
        final WorkRequest request;
        final String uniqueName;
        volatile WorkInfo.State state = WorkInfo.State.ENQUEUED;
        volatile Data output = Data.EMPTY;
        volatile Data progress = Data.EMPTY;
        volatile int attempts = 0;
        volatile ListenableWorker worker;

        Spec(WorkRequest request, String uniqueName) {
            this.id = request.id;
            this.request = request;
            this.uniqueName = uniqueName;
        }

        WorkInfo info() {
            return new WorkInfo(id, state, request.tags, output, progress, attempts);
        }

        void setProgress(Data p) {
            if (state != WorkInfo.State.RUNNING) return;
            progress = p;
            changed(this);
        }
    }

    private void schedule(Spec spec, long delayMs) {
        pool.schedule(() -> run(spec), delayMs, TimeUnit.MILLISECONDS);
    }

    private void run(Spec spec) {
        synchronized (this) {
            if (spec.state != WorkInfo.State.ENQUEUED) return;
            spec.state = WorkInfo.State.RUNNING;
            spec.progress = Data.EMPTY;
        }
        changed(spec);
        ListenableWorker.Result result;
        try {
            ListenableWorker worker = spec.request.workerClass
                .getConstructor(Context.class, WorkerParameters.class)
                .newInstance(context, new WorkerParameters(spec, spec.attempts));
            spec.worker = worker;
            result = worker.run();
        } catch (Throwable t) {
            // WorkManager marks a worker that throws as failed.
            t.printStackTrace();
            result = ListenableWorker.Result.failure();
        }
        synchronized (this) {
            if (spec.state != WorkInfo.State.RUNNING) return; // cancelled meanwhile
            spec.progress = Data.EMPTY;
            if (result instanceof ListenableWorker.Result.Retry) {
                spec.attempts++;
                spec.state = WorkInfo.State.ENQUEUED;
                long backoff = spec.request.backoffPolicy == BackoffPolicy.LINEAR
                    ? spec.request.backoffMillis * spec.attempts
                    : spec.request.backoffMillis << Math.min(20, spec.attempts - 1);
                schedule(spec, Math.min(backoff, 5 * 60 * 60 * 1000L));
            } else if (result instanceof ListenableWorker.Result.Success) {
                spec.output = result.output;
                spec.state = WorkInfo.State.SUCCEEDED;
            } else {
                spec.output = result.output;
                spec.state = WorkInfo.State.FAILED;
            }
        }
        changed(spec);
    }

    private void changed(Spec spec) {
        for (String tag : spec.request.tags) {
            LiveData<List<WorkInfo>> ld = tagLiveData.get(tag);
            if (ld != null) ld.changed();
        }
    }

    private synchronized List<WorkInfo> infosByTag(String tag) {
        List<WorkInfo> out = new ArrayList<>();
        for (Spec s : specs) {
            if (s.request.tags.contains(tag)) out.add(s.info());
        }
        return out;
    }

    private void enqueue(WorkRequest request, String uniqueName, boolean keep) {
        Spec spec;
        synchronized (this) {
            if (uniqueName != null) {
                for (Spec s : new ArrayList<>(specs)) {
                    if (uniqueName.equals(s.uniqueName) && !s.state.isFinished()) {
                        if (keep) return;
                        cancel(s);
                    }
                }
            }
            spec = new Spec(request, uniqueName);
            specs.add(spec);
        }
        changed(spec);
        // Periodic work (the plugin's Background Runner hook) stays enqueued:
        // no run is due within a test.
        if (!request.periodic) schedule(spec, request.initialDelayMillis);
    }

    private synchronized void cancel(Spec s) {
        if (s.state.isFinished()) return;
        s.state = WorkInfo.State.CANCELLED;
        ListenableWorker w = s.worker;
        if (w != null) {
            w.stopped = true;
            w.onStopped();
        }
        pool.execute(() -> changed(s));
    }

    public final class Continuation {

        private final String name;
        private final ExistingWorkPolicy policy;
        private final OneTimeWorkRequest request;

        Continuation(String name, ExistingWorkPolicy policy, OneTimeWorkRequest request) {
            this.name = name;
            this.policy = policy;
            this.request = request;
        }

        public void enqueue() {
            WorkManager.this.enqueue(request, name, policy == ExistingWorkPolicy.KEEP);
        }
    }

    public Continuation beginUniqueWork(String name, ExistingWorkPolicy policy, OneTimeWorkRequest request) {
        return new Continuation(name, policy, request);
    }

    public void enqueue(WorkRequest request) {
        enqueue(request, null, false);
    }

    public void enqueueUniqueWork(String name, ExistingWorkPolicy policy, OneTimeWorkRequest request) {
        enqueue(request, name, policy == ExistingWorkPolicy.KEEP);
    }

    public void enqueueUniquePeriodicWork(String name, ExistingPeriodicWorkPolicy policy, PeriodicWorkRequest request) {
        enqueue(request, name, policy == ExistingPeriodicWorkPolicy.KEEP);
    }

    public CompletableFuture<List<WorkInfo>> getWorkInfosByTag(String tag) {
        return CompletableFuture.completedFuture(infosByTag(tag));
    }

    public LiveData<List<WorkInfo>> getWorkInfosByTagLiveData(String tag) {
        return tagLiveData.computeIfAbsent(tag, (t) -> new LiveData<>(() -> infosByTag(t)));
    }

    public synchronized void cancelAllWorkByTag(String tag) {
        for (Spec s : specs) {
            if (s.request.tags.contains(tag)) cancel(s);
        }
    }

    public synchronized void cancelUniqueWork(String name) {
        for (Spec s : specs) {
            if (name.equals(s.uniqueName)) cancel(s);
        }
    }
}
