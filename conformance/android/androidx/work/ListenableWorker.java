package androidx.work;

import android.content.Context;
import java.util.Set;
import java.util.UUID;

public abstract class ListenableWorker {

    private final Context context;
    private final WorkerParameters params;
    volatile boolean stopped;

    public ListenableWorker(Context context, WorkerParameters params) {
        this.context = context;
        this.params = params;
    }

    public final Context getApplicationContext() {
        return context.getApplicationContext();
    }

    public final Data getInputData() {
        return params.inputData;
    }

    public final UUID getId() {
        return params.id;
    }

    public final Set<String> getTags() {
        return params.tags;
    }

    public final int getRunAttemptCount() {
        return params.runAttemptCount;
    }

    public final boolean isStopped() {
        return stopped;
    }

    public void onStopped() {}

    public final java.util.concurrent.Future<Void> setProgressAsync(Data progress) {
        params.spec.setProgress(progress);
        return java.util.concurrent.CompletableFuture.completedFuture(null);
    }

    abstract Result run();

    public abstract static class Result {

        final Data output;

        Result(Data output) {
            this.output = output;
        }

        public static Result success() {
            return new Success(Data.EMPTY);
        }

        public static Result success(Data output) {
            return new Success(output);
        }

        public static Result failure() {
            return new Failure(Data.EMPTY);
        }

        public static Result failure(Data output) {
            return new Failure(output);
        }

        public static Result retry() {
            return new Retry();
        }

        static final class Success extends Result {

            Success(Data d) {
                super(d);
            }
        }

        static final class Failure extends Result {

            Failure(Data d) {
                super(d);
            }
        }

        static final class Retry extends Result {

            Retry() {
                super(Data.EMPTY);
            }
        }
    }
}
