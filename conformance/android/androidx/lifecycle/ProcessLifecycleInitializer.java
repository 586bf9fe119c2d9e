package androidx.lifecycle;

public final class ProcessLifecycleInitializer {}
