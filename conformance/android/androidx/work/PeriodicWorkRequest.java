package androidx.work;

import java.util.concurrent.TimeUnit;

public final class PeriodicWorkRequest extends WorkRequest {

    PeriodicWorkRequest(Builder b) {
        super(b, true);
    }

    public static final class Builder extends WorkRequest.Builder<Builder, PeriodicWorkRequest> {

        public Builder(Class<? extends ListenableWorker> workerClass, long interval, TimeUnit unit) {
            super(workerClass);
        }

        @Override
        public PeriodicWorkRequest build() {
            return new PeriodicWorkRequest(this);
        }
    }
}
