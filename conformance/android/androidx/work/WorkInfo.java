package androidx.work;

import java.util.Set;
import java.util.UUID;

public final class WorkInfo {

    public enum State {
        ENQUEUED,
        RUNNING,
        SUCCEEDED,
        FAILED,
        BLOCKED,
        CANCELLED;

        public boolean isFinished() {
            return this == SUCCEEDED || this == FAILED || this == CANCELLED;
        }
    }

    private final UUID id;
    private final State state;
    private final Set<String> tags;
    private final Data output;
    private final Data progress;
    private final int runAttemptCount;

    WorkInfo(UUID id, State state, Set<String> tags, Data output, Data progress, int runAttemptCount) {
        this.id = id;
        this.state = state;
        this.tags = tags;
        this.output = output;
        this.progress = progress;
        this.runAttemptCount = runAttemptCount;
    }

    public UUID getId() {
        return id;
    }

    public State getState() {
        return state;
    }

    public Set<String> getTags() {
        return tags;
    }

    public Data getOutputData() {
        return output;
    }

    public Data getProgress() {
        return progress;
    }

    public int getRunAttemptCount() {
        return runAttemptCount;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof WorkInfo)) return false;
        WorkInfo w = (WorkInfo) o;
        return id.equals(w.id) && state == w.state && tags.equals(w.tags) && output.equals(w.output) &&
            progress.equals(w.progress) && runAttemptCount == w.runAttemptCount;
    }

    @Override
    public int hashCode() {
        return java.util.Objects.hash(id, state, tags, output, progress, runAttemptCount);
    }
}
