package android.content.pm;

public class ApplicationInfo {

    public static final int FLAG_DEBUGGABLE = 2;
    // A release build: is_prod is true.
    public int flags = 0;
}
