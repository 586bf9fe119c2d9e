package androidx.lifecycle;

import java.util.concurrent.CopyOnWriteArrayList;

// Observers hear each move to started and back; one added while started
// hears start at once, as LifecycleRegistry brings a new observer up to the
// current state.
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

    synchronized void start() {
        if (started) return;
        started = true;
        for (DefaultLifecycleObserver o : observers) o.onStart(owner);
    }

    synchronized void stop() {
        if (!started) return;
        started = false;
        for (DefaultLifecycleObserver o : observers) o.onStop(owner);
    }
}
