package androidx.lifecycle;

import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Supplier;

// Observers run on one dispatch thread, in order; a new observer gets the
// current value at once, as LiveData does for a started owner. Each
// observer sees a value once: WorkManager's LiveData is deduplicated
// (distinct until changed).
public class LiveData<T> {

    private static final ExecutorService MAIN = Executors.newSingleThreadExecutor((r) -> {
        Thread t = new Thread(r, "livedata-main");
        t.setDaemon(true);
        return t;
    });

    private final Supplier<T> current;
    private final List<Observer<? super T>> observers = new CopyOnWriteArrayList<>();
    // Touched on MAIN only.
    private final Map<Observer<? super T>, Object> delivered = new IdentityHashMap<>();

    public LiveData(Supplier<T> current) {
        this.current = current;
    }

    public void observe(LifecycleOwner owner, Observer<? super T> observer) {
        observers.add(observer);
        MAIN.execute(() -> deliver(observer, current.get()));
    }

    public void removeObserver(Observer<? super T> observer) {
        observers.remove(observer);
    }

    private void deliver(Observer<? super T> o, T value) {
        if (delivered.containsKey(o) && Objects.equals(delivered.get(o), value)) return;
        delivered.put(o, value);
        o.onChanged(value);
    }

    /** Called by the producer on every change. */
    public void changed() {
        if (observers.isEmpty()) return;
        MAIN.execute(() -> {
            T value = current.get();
            for (Observer<? super T> o : observers) {
                deliver(o, value);
            }
        });
    }
}
