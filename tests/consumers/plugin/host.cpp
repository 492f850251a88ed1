// Loads the plugin (argv[1]) with dlopen and runs its rollout of 25 devices.
#include <dlfcn.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  void* plugin = ::dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!plugin) {
    std::fprintf(stderr, "dlopen: %s\n", ::dlerror());
    return 1;
  }
  auto* run = reinterpret_cast<int (*)(int)>(::dlsym(plugin, "fleetcast_plugin_rollout"));
  if (!run) return 1;
  const int succeeded = run(25);
  std::printf("plugin: %d of 25 devices succeeded\n", succeeded);
  ::dlclose(plugin);
  return succeeded == 25 ? 0 : 1;
}
