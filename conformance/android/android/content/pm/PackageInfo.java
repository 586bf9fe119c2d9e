package android.content.pm;

public class PackageInfo {

    public String packageName;
    public String versionName;
    public long longVersionCode;
    public long firstInstallTime;
    public long lastUpdateTime;

    public long getLongVersionCode() {
        return longVersionCode;
    }
}
