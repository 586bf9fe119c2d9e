package android.view;

import android.content.Context;

// No screen on this device: a view cannot be made.
public class View {

    public static final int IMPORTANT_FOR_ACCESSIBILITY_NO_HIDE_DESCENDANTS = 4;
    public static final int VISIBLE = 0;
    public static final int GONE = 8;

    public interface OnClickListener {
        void onClick(View v);
    }

    public View(Context context) {
        throw new UnsupportedOperationException("no screen on this device");
    }

    public void setLayoutParams(ViewGroup.LayoutParams params) {}

    public void setClickable(boolean b) {}

    public void setFocusable(boolean b) {}

    public void setBackgroundColor(int color) {}

    public void setImportantForAccessibility(int mode) {}

    public void setEnabled(boolean enabled) {}

    public void setOnClickListener(OnClickListener l) {}

    public void setPadding(int l, int t, int r, int b) {}

    public void setVisibility(int v) {}

    public void bringToFront() {}

    public ViewGroup getParent() {
        return null;
    }

    public boolean post(Runnable r) {
        return false;
    }
}
