package android.content.pm;

public class InstallSourceInfo {

    public String getInstallingPackageName() {
        return null;
    }

    public String getInitiatingPackageName() {
        return null;
    }
}
