package com.google.android.play.core.appupdate;

import android.content.Context;

// No Play Store on this device.
public final class AppUpdateManagerFactory {

    public static AppUpdateManager create(Context context) {
        throw new UnsupportedOperationException("no Play Store on this device");
    }
}
