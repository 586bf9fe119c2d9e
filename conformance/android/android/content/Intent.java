package android.content;

import android.net.Uri;

public class Intent {

    public static final String ACTION_VIEW = "android.intent.action.VIEW";
    public static final int FLAG_ACTIVITY_NEW_TASK = 0x10000000;

    private final String action;
    private final Uri data;
    private int flags;

    public Intent(String action, Uri data) {
        this.action = action;
        this.data = data;
    }

    public String getAction() {
        return action;
    }

    public Uri getData() {
        return data;
    }

    public Intent addFlags(int flags) {
        this.flags |= flags;
        return this;
    }

    public ComponentName getComponent() {
        return null;
    }
}
