package com.google.android.play.core.install.model;

public final class AppUpdateType {

    public static final int FLEXIBLE = 0;
    public static final int IMMEDIATE = 1;
}
