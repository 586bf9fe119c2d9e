package androidx.lifecycle;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Supplier;

// Observers run on one dispatch thread, in order, and a new observer gets
// the current value at once, as LiveData does for a started owner.
public class LiveData<T> {

    private static final ExecutorService MAIN = Executors.newSingleThreadExecutor((r) -> {
        Thread t = new Thread(r, "livedata-main");
        t.setDaemon(true);
        return t;
    });

    private final Supplier<T> current;
    private final List<Observer<? super T>> observers = new CopyOnWriteArrayList<>();

    public LiveData(Supplier<T> current) {
        this.current = current;
    }

    public void observe(LifecycleOwner owner, Observer<? super T> observer) {
        observers.add(observer);
        MAIN.execute(() -> observer.onChanged(current.get()));
    }

    public void removeObserver(Observer<? super T> observer) {
        observers.remove(observer);
    }

    /** Called by the producer on every change. */
    public void changed() {
        if (observers.isEmpty()) return;
        MAIN.execute(() -> {
            T value = current.get();
            for (Observer<? super T> o : observers) {
                o.onChanged(value);
            }
        });
    }
}
