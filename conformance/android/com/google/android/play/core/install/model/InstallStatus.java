package com.google.android.play.core.install.model;

public final class InstallStatus {

    public static final int UNKNOWN = 0;
    public static final int PENDING = 1;
    public static final int DOWNLOADING = 2;
    public static final int INSTALLING = 3;
    public static final int INSTALLED = 4;
    public static final int FAILED = 5;
    public static final int CANCELED = 6;
    public static final int DOWNLOADED = 11;
}
