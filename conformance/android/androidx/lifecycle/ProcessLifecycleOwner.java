package androidx.lifecycle;

// The app process's lifecycle. moveToForeground/moveToBackground are what
// the OS does when the app's first activity starts and its last one stops.
public final class ProcessLifecycleOwner implements LifecycleOwner {

    private static final ProcessLifecycleOwner INSTANCE = new ProcessLifecycleOwner();

    private final Lifecycle lifecycle = new Lifecycle(this);

    public static LifecycleOwner get() {
        return INSTANCE;
    }

    @Override
    public Lifecycle getLifecycle() {
        return lifecycle;
    }

    public static void moveToForeground() {
        INSTANCE.lifecycle.start();
    }

    public static void moveToBackground() {
        INSTANCE.lifecycle.stop();
    }
}
