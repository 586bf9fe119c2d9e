package com.google.android.play.core.install.model;

public final class UpdateAvailability {

    public static final int UNKNOWN = 0;
    public static final int UPDATE_NOT_AVAILABLE = 1;
    public static final int UPDATE_AVAILABLE = 2;
    public static final int DEVELOPER_TRIGGERED_UPDATE_IN_PROGRESS = 3;
}
