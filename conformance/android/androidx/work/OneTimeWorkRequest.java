package androidx.work;

public final class OneTimeWorkRequest extends WorkRequest {

    OneTimeWorkRequest(Builder b) {
        super(b, false);
    }

    public static final class Builder extends WorkRequest.Builder<Builder, OneTimeWorkRequest> {

        public Builder(Class<? extends ListenableWorker> workerClass) {
            super(workerClass);
        }

        @Override
        public OneTimeWorkRequest build() {
            return new OneTimeWorkRequest(this);
        }
    }
}
