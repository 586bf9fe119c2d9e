package android.content;

import android.content.pm.ApplicationInfo;
import android.content.pm.PackageInfo;
import android.content.pm.PackageManager;
import android.content.res.AssetManager;
import java.io.File;
import java.util.HashMap;
import java.util.Map;

// A device's storage as plain directories under one root; nothing else of Android.
public class Context {

    public static final int MODE_PRIVATE = 0;

    public static final String ACTIVITY_SERVICE = "activity";
    public static final String SENSOR_SERVICE = "sensor";

    private final File root;
    private final Map<String, SharedPreferences> prefs = new HashMap<>();
    private PackageInfo installed;

    public Context(File root) {
        this.root = root;
    }

    // The app this context belongs to, as installed on the device.
    public void setInstalledPackage(PackageInfo installed) {
        this.installed = installed;
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
        return new PackageManager(installed);
    }

    public String getPackageName() {
        return installed != null ? installed.packageName : "conformance.app";
    }

    public void startActivity(Intent intent) {
        throw new ActivityNotFoundException("no other app on this device");
    }

    public android.content.res.Resources getResources() {
        return new android.content.res.Resources();
    }

    public Object getSystemService(String name) {
        return ACTIVITY_SERVICE.equals(name) ? new android.app.ActivityManager() : null;
    }

    public ApplicationInfo getApplicationInfo() {
        return new ApplicationInfo();
    }

    public synchronized SharedPreferences getSharedPreferences(String name, int mode) {
        return prefs.computeIfAbsent(name, (n) -> new SharedPreferences.InMemory());
    }
}
