package com.google.android.play.core.install;

public abstract class InstallState {

    public abstract int installStatus();

    public abstract long bytesDownloaded();

    public abstract long totalBytesToDownload();

    public abstract int installErrorCode();
}
