package android.view;

public abstract class MotionEvent {

    public static final int ACTION_UP = 1;
    public static final int ACTION_CANCEL = 3;
    public static final int ACTION_POINTER_DOWN = 5;
    public static final int ACTION_POINTER_UP = 6;

    public abstract int getActionMasked();

    public abstract int getPointerCount();

    public abstract float getX(int pointerIndex);

    public abstract float getY(int pointerIndex);
}
