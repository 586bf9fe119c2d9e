package android.os;

import java.util.concurrent.DelayQueue;
import java.util.concurrent.Delayed;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

// One looper, the main one: a daemon thread running posted messages in
// time order. Any other thread has no looper.
public final class Looper {

    private static final Looper MAIN = new Looper();

    final DelayQueue<Message> queue = new DelayQueue<>();
    private final Thread thread;
    private static final AtomicLong seq = new AtomicLong();

    static final class Message implements Delayed {

        final Handler handler;
        final Runnable r;
        final long when;
        final long order = seq.incrementAndGet();

        Message(Handler handler, Runnable r, long when) {
            this.handler = handler;
            this.r = r;
            this.when = when;
        }

        public long getDelay(TimeUnit unit) {
            return unit.convert(when - System.nanoTime(), TimeUnit.NANOSECONDS);
        }

        public int compareTo(Delayed o) {
            Message m = (Message) o;
            if (when != m.when) return Long.compare(when, m.when);
            return Long.compare(order, m.order);
        }
    }

    private Looper() {
        thread = new Thread(() -> {
            while (true) {
                try {
                    queue.take().r.run();
                } catch (InterruptedException e) {
                    return;
                } catch (Throwable t) {
                    t.printStackTrace();
                }
            }
        }, "main");
        thread.setDaemon(true);
        thread.start();
    }

    public static Looper getMainLooper() {
        return MAIN;
    }

    public static Looper myLooper() {
        return Thread.currentThread() == MAIN.thread ? MAIN : null;
    }

    public Thread getThread() {
        return thread;
    }
}
