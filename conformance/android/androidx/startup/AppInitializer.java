package androidx.startup;

import android.content.Context;

public final class AppInitializer {

    private static final AppInitializer INSTANCE = new AppInitializer();

    public static AppInitializer getInstance(Context context) {
        return INSTANCE;
    }

    public <T> T initializeComponent(Class<?> component) {
        return null;
    }
}
