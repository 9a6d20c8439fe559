// Linked with one layer's library whole and the layers below it only (CMakeLists.txt): if the
// layer calls into a layer above it, this program does not link. It is never run.
int main() { return 0; }
