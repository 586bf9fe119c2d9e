package android.content.pm;

// Knows the one installed app (the host app, if the device was given one);
// installer lookups fail as they do for a sideloaded app.
public class PackageManager {

    public static class NameNotFoundException extends Exception {}

    public static final class PackageInfoFlags {

        public static PackageInfoFlags of(long flags) {
            return new PackageInfoFlags();
        }
    }

    private final PackageInfo installed;

    public PackageManager() {
        this(null);
    }

    public PackageManager(PackageInfo installed) {
        this.installed = installed;
    }

    public PackageInfo getPackageInfo(String packageName, PackageInfoFlags flags) throws NameNotFoundException {
        return getPackageInfo(packageName, 0);
    }

    public PackageInfo getPackageInfo(String packageName, int flags) throws NameNotFoundException {
        if (installed == null || !installed.packageName.equals(packageName)) {
            throw new NameNotFoundException();
        }
        return installed;
    }

    public InstallSourceInfo getInstallSourceInfo(String packageName) throws NameNotFoundException {
        throw new NameNotFoundException();
    }

    public CharSequence getApplicationLabel(ApplicationInfo info) {
        return installed != null ? installed.packageName : "";
    }

    public String getInstallerPackageName(String packageName) {
        return null;
    }
}
