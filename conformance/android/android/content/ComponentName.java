package android.content;

public final class ComponentName {

    private final String className;

    public ComponentName(String pkg, String className) {
        this.className = className;
    }

    public String getClassName() {
        return className;
    }
}
