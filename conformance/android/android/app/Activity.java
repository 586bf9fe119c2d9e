package android.app;

import android.content.Context;
import android.content.Intent;
import android.os.Handler;
import android.os.Looper;
import android.view.Window;
import java.io.File;

// runOnUiThread runs on the main looper: at once on it, else posted in order.
public class Activity extends Context {

    public static final int RESULT_OK = -1;
    public static final int RESULT_CANCELED = 0;

    private final Handler ui = new Handler(Looper.getMainLooper());
    private Intent intent;

    public Activity(File root) {
        super(root);
    }

    public void runOnUiThread(Runnable action) {
        if (Looper.myLooper() == Looper.getMainLooper()) {
            action.run();
        } else {
            ui.post(action);
        }
    }

    public Intent getIntent() {
        return intent;
    }

    public void setIntent(Intent intent) {
        this.intent = intent;
    }

    public Window getWindow() {
        return null;
    }

    public boolean isFinishing() {
        return false;
    }

    public boolean isDestroyed() {
        return false;
    }
}
