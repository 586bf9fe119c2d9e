package android.content.pm;

// Installer lookups fail as they do for a sideloaded app.
public class PackageManager {

    public static class NameNotFoundException extends Exception {}

    public static final class PackageInfoFlags {

        public static PackageInfoFlags of(long flags) {
            return new PackageInfoFlags();
        }
    }

    public PackageInfo getPackageInfo(String packageName, PackageInfoFlags flags) throws NameNotFoundException {
        throw new NameNotFoundException();
    }

    public PackageInfo getPackageInfo(String packageName, int flags) throws NameNotFoundException {
        throw new NameNotFoundException();
    }

    public InstallSourceInfo getInstallSourceInfo(String packageName) throws NameNotFoundException {
        throw new NameNotFoundException();
    }

    public String getInstallerPackageName(String packageName) {
        return null;
    }
}
