package android.app;

import android.content.Context;
import java.io.File;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

// The UI thread is one daemon thread, so runOnUiThread keeps its ordering.
public class Activity extends Context {

    private final ExecutorService ui = Executors.newSingleThreadExecutor((r) -> {
        Thread t = new Thread(r, "main");
        t.setDaemon(true);
        return t;
    });

    public Activity(File root) {
        super(root);
    }

    public void runOnUiThread(Runnable action) {
        ui.execute(action);
    }
}
