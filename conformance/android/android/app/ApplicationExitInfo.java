package android.app;

public final class ApplicationExitInfo {

    public int getPid() {
        return 0;
    }

    public String getProcessName() {
        return null;
    }

    public long getTimestamp() {
        return 0;
    }

    public int getReason() {
        return 0;
    }

    public int getStatus() {
        return 0;
    }

    public int getImportance() {
        return 0;
    }

    public String getDescription() {
        return null;
    }

    public long getPss() {
        return 0;
    }

    public long getRss() {
        return 0;
    }
}
