package android.view;

import android.content.Context;

public class ViewGroup extends View {

    public ViewGroup(Context context) {
        super(context);
    }

    public void addView(View child) {}

    public void addView(View child, LayoutParams params) {}

    public void removeView(View child) {}

    public static class LayoutParams {

        public static final int MATCH_PARENT = -1;
        public static final int WRAP_CONTENT = -2;

        public LayoutParams(int width, int height) {}
    }

    public static class MarginLayoutParams extends LayoutParams {

        public MarginLayoutParams(int width, int height) {
            super(width, height);
        }

        public void setMargins(int l, int t, int r, int b) {}
    }
}
