package android.content;

import android.content.pm.ApplicationInfo;
import android.content.pm.PackageManager;
import android.content.res.AssetManager;
import java.io.File;
import java.util.HashMap;
import java.util.Map;

// A device's storage as plain directories under one root; nothing else of Android.
public class Context {

    public static final int MODE_PRIVATE = 0;

    private final File root;
    private final Map<String, SharedPreferences> prefs = new HashMap<>();

    public Context(File root) {
        this.root = root;
    }

    private File dir(String name) {
        File d = new File(root, name);
        d.mkdirs();
        return d;
    }

    public Context getApplicationContext() {
        return this;
    }

    public File getFilesDir() {
        return dir("files");
    }

    public File getCacheDir() {
        return dir("cache");
    }

    public File getNoBackupFilesDir() {
        return dir("no_backup");
    }

    public AssetManager getAssets() {
        return new AssetManager(dir("assets"));
    }

    public PackageManager getPackageManager() {
        return new PackageManager();
    }

    public String getPackageName() {
        return "conformance.app";
    }

    public ApplicationInfo getApplicationInfo() {
        return new ApplicationInfo();
    }

    public synchronized SharedPreferences getSharedPreferences(String name, int mode) {
        return prefs.computeIfAbsent(name, (n) -> new SharedPreferences.InMemory());
    }
}
