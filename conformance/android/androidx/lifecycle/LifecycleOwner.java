package androidx.lifecycle;

// The plugin only checks that its Activity is one; the driver's Activity is
// always started, so no Lifecycle is modelled.
public interface LifecycleOwner {
    default Lifecycle getLifecycle() {
        throw new UnsupportedOperationException("no lifecycle modelled for this owner");
    }
}
