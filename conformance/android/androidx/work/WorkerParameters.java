package androidx.work;

import java.util.Set;
import java.util.UUID;

public final class WorkerParameters {

    final UUID id;
    final Data inputData;
    final Set<String> tags;
    final int runAttemptCount;
    final WorkManager.Spec spec;

    WorkerParameters(WorkManager.Spec spec, int runAttemptCount) {
        this.id = spec.id;
        this.inputData = spec.request.inputData;
        this.tags = spec.request.tags;
        this.runAttemptCount = runAttemptCount;
        this.spec = spec;
    }
}
