package android.os;

public class Handler {

    private final Looper looper;

    public Handler(Looper looper) {
        this.looper = looper;
    }

    public boolean post(Runnable r) {
        return postDelayed(r, 0);
    }

    public boolean postDelayed(Runnable r, long delayMillis) {
        long when = System.nanoTime() + Math.max(0, delayMillis) * 1_000_000L;
        looper.queue.add(new Looper.Message(this, r, when));
        return true;
    }

    public void removeCallbacks(Runnable r) {
        looper.queue.removeIf((m) -> m.handler == this && m.r == r);
    }
}
