package androidx.lifecycle;

import java.util.concurrent.CopyOnWriteArrayList;

// Observers hear start and stop; one added while started hears start at
// once, as LifecycleRegistry brings a new observer up to the current state.
public class Lifecycle {

    private final LifecycleOwner owner;
    private final CopyOnWriteArrayList<DefaultLifecycleObserver> observers = new CopyOnWriteArrayList<>();
    private volatile boolean started;

    Lifecycle(LifecycleOwner owner) {
        this.owner = owner;
    }

    public void addObserver(LifecycleObserver observer) {
        DefaultLifecycleObserver o = (DefaultLifecycleObserver) observer;
        observers.add(o);
        o.onCreate(owner);
        if (started) {
            o.onStart(owner);
        }
    }

    public void removeObserver(LifecycleObserver observer) {
        observers.remove(observer);
    }

    void start() {
        started = true;
        for (DefaultLifecycleObserver o : observers) o.onStart(owner);
    }

    void stop() {
        started = false;
        for (DefaultLifecycleObserver o : observers) o.onStop(owner);
    }
}
