package android.view;

public interface WindowManager {
    class LayoutParams {}
}
