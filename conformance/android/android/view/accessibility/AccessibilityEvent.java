package android.view.accessibility;

public class AccessibilityEvent {}
