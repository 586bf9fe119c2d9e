package com.google.android.play.core.appupdate;

public abstract class AppUpdateOptions {

    public static Builder newBuilder(int appUpdateType) {
        throw new UnsupportedOperationException("no Play Store on this device");
    }

    public abstract static class Builder {

        public abstract AppUpdateOptions build();
    }
}
