package androidx.work;

import java.util.LinkedHashSet;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

public abstract class WorkRequest {

    public static final long MIN_BACKOFF_MILLIS = 10_000L;
    public static final long DEFAULT_BACKOFF_DELAY_MILLIS = 30_000L;

    final UUID id = UUID.randomUUID();
    final Class<? extends ListenableWorker> workerClass;
    final Data inputData;
    final Set<String> tags;
    final BackoffPolicy backoffPolicy;
    final long backoffMillis;
    final long initialDelayMillis;
    final boolean periodic;

    WorkRequest(Builder<?, ?> b, boolean periodic) {
        this.workerClass = b.workerClass;
        this.inputData = b.inputData;
        this.tags = new LinkedHashSet<>(b.tags);
        this.backoffPolicy = b.backoffPolicy;
        this.backoffMillis = b.backoffMillis;
        this.initialDelayMillis = b.initialDelayMillis;
        this.periodic = periodic;
    }

    public UUID getId() {
        return id;
    }

    @SuppressWarnings("unchecked")
    public abstract static class Builder<B extends Builder<B, W>, W extends WorkRequest> {

        final Class<? extends ListenableWorker> workerClass;
        Data inputData = Data.EMPTY;
        final Set<String> tags = new LinkedHashSet<>();
        BackoffPolicy backoffPolicy = BackoffPolicy.EXPONENTIAL;
        long backoffMillis = DEFAULT_BACKOFF_DELAY_MILLIS;
        long initialDelayMillis = 0;

        Builder(Class<? extends ListenableWorker> workerClass) {
            this.workerClass = workerClass;
        }

        public B setInputData(Data data) {
            this.inputData = data;
            return (B) this;
        }

        public B addTag(String tag) {
            tags.add(tag);
            return (B) this;
        }

        public B setConstraints(Constraints c) {
            return (B) this;
        }

        public B setBackoffCriteria(BackoffPolicy policy, long delay, TimeUnit unit) {
            this.backoffPolicy = policy;
            this.backoffMillis = Math.max(MIN_BACKOFF_MILLIS, unit.toMillis(delay));
            return (B) this;
        }

        public B setInitialDelay(long delay, TimeUnit unit) {
            this.initialDelayMillis = unit.toMillis(delay);
            return (B) this;
        }

        public B setExpedited(OutOfQuotaPolicy policy) {
            return (B) this;
        }

        public abstract W build();
    }
}
