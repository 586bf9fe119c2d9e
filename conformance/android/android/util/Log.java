package android.util;

// Logcat is stderr, so the test shows it when a scenario fails.
public final class Log {

    public static final int VERBOSE = 2;
    public static final int DEBUG = 3;
    public static final int INFO = 4;
    public static final int WARN = 5;
    public static final int ERROR = 6;

    private static int p(String level, String tag, String msg) {
        System.err.println(level + "/" + tag + ": " + msg);
        return 0;
    }

    public static int v(String tag, String msg) {
        return p("V", tag, msg);
    }

    public static int d(String tag, String msg) {
        return p("D", tag, msg);
    }

    public static int i(String tag, String msg) {
        return p("I", tag, msg);
    }

    public static int w(String tag, String msg) {
        return p("W", tag, msg);
    }

    public static int e(String tag, String msg) {
        return p("E", tag, msg);
    }

    public static int e(String tag, String msg, Throwable tr) {
        return p("E", tag, msg + ": " + tr);
    }
}
