// The command line: torchrun 2.x's flags, spellings, PET_* variables and defaults.
#include <gtest/gtest.h>
#include <signal.h>

#include "strun/launcher/options.h"

namespace strun::launcher {
namespace {

using Env = std::map<std::string, std::string>;

LaunchOptions Parse(std::vector<std::string> args, const Env& env = {}) {
  auto r = ParseCommandLine(args, env);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : LaunchOptions{};
}

std::string ParseError(std::vector<std::string> args, const Env& env = {}) {
  auto r = ParseCommandLine(args, env);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.error().message;
}

TEST(Cli, DefaultsAreTorchruns) {
  LaunchOptions o = Parse({"train.py"});
  EXPECT_EQ(o.nnodes, "1:1");
  EXPECT_EQ(o.min_nodes, 1);
  EXPECT_EQ(o.max_nodes, 1);
  EXPECT_EQ(o.nproc_per_node, "1");
  EXPECT_EQ(o.rdzv_backend, "static");
  EXPECT_EQ(o.rdzv_endpoint, "");
  EXPECT_EQ(o.rdzv_id, "none");
  EXPECT_EQ(o.rdzv_conf, "");
  EXPECT_FALSE(o.standalone);
  EXPECT_EQ(o.max_restarts, 0);
  EXPECT_DOUBLE_EQ(o.monitor_interval, 0.1);
  EXPECT_EQ(o.start_method, "spawn");
  EXPECT_EQ(o.event_log_handler, "null");
  EXPECT_EQ(o.role, "default");
  EXPECT_FALSE(o.module);
  EXPECT_FALSE(o.no_python);
  EXPECT_FALSE(o.run_path);
  EXPECT_FALSE(o.log_dir.has_value());
  EXPECT_EQ(o.redirects, "0");
  EXPECT_EQ(o.tee, "0");
  EXPECT_EQ(o.local_ranks_filter, "");
  EXPECT_EQ(o.node_rank, 0);
  EXPECT_EQ(o.master_addr, "127.0.0.1");
  EXPECT_FALSE(o.master_port.has_value());
  EXPECT_FALSE(o.local_addr.has_value());
  EXPECT_EQ(o.signals_to_handle, "SIGTERM,SIGINT,SIGHUP,SIGQUIT");
  EXPECT_EQ(o.signals, (std::vector<int>{SIGTERM, SIGINT, SIGHUP, SIGQUIT}));
  EXPECT_EQ(o.shutdown_timeout, 30);
  EXPECT_FALSE(o.virtual_local_rank);
  EXPECT_EQ(o.training_script, "train.py");
  EXPECT_TRUE(o.training_script_args.empty());
  EXPECT_TRUE(o.explicit_options.empty());
}

struct ValueFlag {
  std::string dash, underscore, dest, value;
  std::function<std::string(const LaunchOptions&)> get;
};

std::vector<ValueFlag> ValueFlags() {
  return {
      {"--nnodes", "--nnodes", "nnodes", "2:4", [](auto& o) { return o.nnodes; }},
      {"--nproc-per-node", "--nproc_per_node", "nproc_per_node", "gpu",
       [](auto& o) { return o.nproc_per_node; }},
      {"--rdzv-backend", "--rdzv_backend", "rdzv_backend", "c10d",
       [](auto& o) { return o.rdzv_backend; }},
      {"--rdzv-endpoint", "--rdzv_endpoint", "rdzv_endpoint", "h:1",
       [](auto& o) { return o.rdzv_endpoint; }},
      {"--rdzv-id", "--rdzv_id", "rdzv_id", "job7", [](auto& o) { return o.rdzv_id; }},
      {"--rdzv-conf", "--rdzv_conf", "rdzv_conf", "join_timeout=5",
       [](auto& o) { return o.rdzv_conf; }},
      {"--max-restarts", "--max_restarts", "max_restarts", "3",
       [](auto& o) { return std::to_string(o.max_restarts); }},
      {"--monitor-interval", "--monitor_interval", "monitor_interval", "0.5",
       [](auto& o) { return o.monitor_interval == 0.5 ? std::string("0.5") : std::string("?"); }},
      {"--start-method", "--start_method", "start_method", "fork",
       [](auto& o) { return o.start_method; }},
      {"--event-log-handler", "--event_log_handler", "event_log_handler", "console",
       [](auto& o) { return o.event_log_handler; }},
      {"--role", "--role", "role", "trainer", [](auto& o) { return o.role; }},
      {"--log-dir", "--log_dir", "log_dir", "/tmp/x",
       [](auto& o) { return o.log_dir.value_or("?"); }},
      {"--redirects", "-r", "redirects", "3", [](auto& o) { return o.redirects; }},
      {"--tee", "-t", "tee", "0:1,1:2", [](auto& o) { return o.tee; }},
      {"--local-ranks-filter", "--local_ranks_filter", "local_ranks_filter", "0,2",
       [](auto& o) { return o.local_ranks_filter; }},
      {"--node-rank", "--node_rank", "node_rank", "1",
       [](auto& o) { return std::to_string(o.node_rank); }},
      {"--master-addr", "--master_addr", "master_addr", "10.0.0.1",
       [](auto& o) { return o.master_addr; }},
      {"--master-port", "--master_port", "master_port", "1234",
       [](auto& o) { return o.master_port ? std::to_string(*o.master_port) : std::string("?"); }},
      {"--local-addr", "--local_addr", "local_addr", "10.0.0.2",
       [](auto& o) { return o.local_addr.value_or("?"); }},
      {"--signals-to-handle", "--signals_to_handle", "signals_to_handle", "SIGTERM,SIGUSR1",
       [](auto& o) { return o.signals_to_handle; }},
      {"--shutdown-timeout", "--shutdown_timeout", "shutdown_timeout", "7",
       [](auto& o) { return std::to_string(o.shutdown_timeout); }},
  };
}

TEST(Cli, EnvironmentFlagAndStrunEnvironmentVariable) {
  EXPECT_FALSE(Parse({"train.py"}).environment);
  EXPECT_EQ(Parse({"--environment=./x.toml", "train.py"}).environment.value_or(""), "./x.toml");
  EXPECT_EQ(Parse({"--environment", "ngc", "train.py"}).environment.value_or(""), "ngc");
  EXPECT_EQ(Parse({"train.py"}, {{"STRUN_ENVIRONMENT", "ngc"}}).environment.value_or(""), "ngc");
  // The flag wins over the variable; it is not a torchrun flag, so PET_ENVIRONMENT means nothing.
  EXPECT_EQ(
      Parse({"--environment=a", "train.py"}, {{"STRUN_ENVIRONMENT", "b"}}).environment.value_or(""),
      "a");
  EXPECT_FALSE(Parse({"train.py"}, {{"PET_ENVIRONMENT", "b"}}).environment);
  // Arguments after the script belong to the script.
  EXPECT_FALSE(Parse({"train.py", "--environment=x"}).environment);
  EXPECT_NE(ParseError({"--environment=", "train.py"}).find("--environment"), std::string::npos);
}

TEST(Cli, EveryValueFlagInBothSpellingsAndBothForms) {
  for (const auto& f : ValueFlags()) {
    for (const std::string& name : {f.dash, f.underscore}) {
      SCOPED_TRACE(name);
      LaunchOptions a = Parse({name, f.value, "train.py"});
      EXPECT_EQ(f.get(a), f.value);
      EXPECT_TRUE(a.Explicit(f.dest));
      if (name.size() > 2) {  // --flag=value (short options: -r=3, tested below)
        LaunchOptions b = Parse({name + "=" + f.value, "train.py"});
        EXPECT_EQ(f.get(b), f.value);
      }
    }
  }
}

TEST(Cli, EveryValueFlagFromPetEnvironment) {
  for (const auto& f : ValueFlags()) {
    std::string var = "PET_";
    for (char c : f.dest) var.push_back(char(std::toupper(c)));
    SCOPED_TRACE(var);
    LaunchOptions o = Parse({"train.py"}, {{var, f.value}});
    EXPECT_EQ(f.get(o), f.value);
    EXPECT_TRUE(o.Explicit(f.dest));
  }
}

TEST(Cli, CommandLineWinsOverPet) {
  LaunchOptions o = Parse({"--nproc-per-node=4", "train.py"}, {{"PET_NPROC_PER_NODE", "2"}});
  EXPECT_EQ(o.nproc_per_node, "4");
  o = Parse({"--max_restarts", "5", "train.py"}, {{"PET_MAX_RESTARTS", "2"}});
  EXPECT_EQ(o.max_restarts, 5);
}

TEST(Cli, SwitchesInBothSpellingsAndPet) {
  struct S {
    std::vector<std::string> names;
    std::string dest;
    std::function<bool(const LaunchOptions&)> get;
  };
  std::vector<S> switches = {
      {{"--standalone"}, "standalone", [](auto& o) { return o.standalone; }},
      {{"-m", "--module"}, "module", [](auto& o) { return o.module; }},
      {{"--no-python", "--no_python"}, "no_python", [](auto& o) { return o.no_python; }},
      {{"--run-path", "--run_path"}, "run_path", [](auto& o) { return o.run_path; }},
      {{"--virtual-local-rank", "--virtual_local_rank"},
       "virtual_local_rank",
       [](auto& o) { return o.virtual_local_rank; }},
  };
  for (const auto& s : switches) {
    for (const auto& n : s.names) {
      SCOPED_TRACE(n);
      EXPECT_TRUE(s.get(Parse({n, "train.py"})));
    }
    std::string var = "PET_";
    for (char c : s.dest) var.push_back(char(std::toupper(c)));
    EXPECT_TRUE(s.get(Parse({"train.py"}, {{var, "1"}}))) << var;
    EXPECT_FALSE(s.get(Parse({"train.py"}, {{var, "0"}}))) << var;
    EXPECT_TRUE(s.get(Parse({s.names[0], "train.py"}, {{var, "0"}}))) << var;
    EXPECT_NE(ParseError({"train.py"}, {{var, "yes"}}).find(var), std::string::npos);
  }
  EXPECT_NE(ParseError({"--standalone=1", "x.py"}).find("ignored explicit argument"),
            std::string::npos);
}

TEST(Cli, ShortOptionForms) {
  EXPECT_EQ(Parse({"-r3", "x.py"}).redirects, "3");
  EXPECT_EQ(Parse({"-r=3", "x.py"}).redirects, "3");
  EXPECT_EQ(Parse({"-r", "3", "x.py"}).redirects, "3");
  EXPECT_EQ(Parse({"-t", "0:1,1:2", "x.py"}).tee, "0:1,1:2");
  LaunchOptions o = Parse({"-m", "pkg.train", "--lr", "1"});
  EXPECT_TRUE(o.module);
  EXPECT_EQ(o.training_script, "pkg.train");
  EXPECT_EQ(o.training_script_args, (std::vector<std::string>{"--lr", "1"}));
}

TEST(Cli, AbbreviationsLikeArgparse) {
  EXPECT_EQ(Parse({"--nproc=2", "x.py"}).nproc_per_node, "2");
  EXPECT_EQ(Parse({"--max-r", "2", "x.py"}).max_restarts, 2);
  EXPECT_EQ(Parse({"--stand", "x.py"}).standalone, true);
  std::string e = ParseError({"--n", "2", "x.py"});
  EXPECT_NE(e.find("ambiguous option: --n could match"), std::string::npos) << e;
  e = ParseError({"--bogus", "x.py"});
  EXPECT_NE(e.find("unrecognized arguments: --bogus"), std::string::npos) << e;
}

TEST(Cli, ScriptArgumentsAreNotParsed) {
  LaunchOptions o = Parse({"--nnodes", "1", "train.py", "--nnodes", "7", "-m", "--", "x"});
  EXPECT_EQ(o.nnodes, "1");
  EXPECT_FALSE(o.module);
  EXPECT_EQ(o.training_script_args, (std::vector<std::string>{"--nnodes", "7", "-m", "--", "x"}));
  o = Parse({"--standalone", "--", "--weird-script", "a"});
  EXPECT_EQ(o.training_script, "--weird-script");
  EXPECT_EQ(o.training_script_args, (std::vector<std::string>{"a"}));
}

TEST(Cli, TutorialCommandLine) {
  // The CSCS nanotron tutorial's torchrun arguments.
  LaunchOptions o =
      Parse({"--master-addr=nid001", "--master-port=29500", "--node-rank=0", "--nnodes=2",
             "--nproc-per-node=4", "run_train.py", "--config-file", "cfg.yaml"});
  EXPECT_EQ(o.master_addr, "nid001");
  EXPECT_EQ(*o.master_port, 29500);
  EXPECT_EQ(o.min_nodes, 2);
  EXPECT_EQ(o.nproc_per_node, "4");
  EXPECT_EQ(o.training_script_args, (std::vector<std::string>{"--config-file", "cfg.yaml"}));
}

TEST(Cli, Errors) {
  EXPECT_NE(ParseError({"--max-restarts", "x", "a.py"})
                .find("argument --max-restarts: invalid int value: 'x'"),
            std::string::npos);
  EXPECT_NE(ParseError({"a.py"}, {{"PET_MAX_RESTARTS", "many"}}).find("PET_MAX_RESTARTS"),
            std::string::npos);
  EXPECT_NE(ParseError({"--nnodes"}).find("expected one argument"), std::string::npos);
  EXPECT_NE(ParseError({"--nnodes", "--standalone", "a.py"}).find("expected one argument"),
            std::string::npos);
  EXPECT_NE(ParseError({}).find("required: training_script"), std::string::npos);
  EXPECT_NE(ParseError({"--no-python", "-m", "a"}).find("'--no-python' flag and the '--module'"),
            std::string::npos);
  EXPECT_NE(ParseError({"-r", "4", "a.py"}).find("--redirects=4"), std::string::npos);
  EXPECT_NE(ParseError({"-t", "0:1,1", "a.py"}).find("--tee"), std::string::npos);
  EXPECT_NE(
      ParseError({"--local-ranks-filter", "0,x", "a.py"}).find("comma-separated list of integers"),
      std::string::npos);
  EXPECT_NE(ParseError({"--nnodes", "0", "a.py"}).find("0 < MIN <= MAX"), std::string::npos);
  EXPECT_NE(ParseError({"--nnodes", "3:2", "a.py"}).find("0 < MIN <= MAX"), std::string::npos);
  EXPECT_NE(ParseError({"--nnodes", "1:2:3", "a.py"}).find("MIN:MAX"), std::string::npos);
  EXPECT_NE(ParseError({"--max-restarts=-1", "a.py"}).find(">= 0"), std::string::npos);
  EXPECT_NE(ParseError({"--start-method", "thread", "a.py"}).find("invalid choice: 'thread'"),
            std::string::npos);
  EXPECT_NE(ParseError({"--signals-to-handle", "SIGFOO", "a.py"}).find("unknown signal 'SIGFOO'"),
            std::string::npos);
  EXPECT_NE(ParseError({"--signals-to-handle", "SIGKILL", "a.py"}).find("cannot be handled"),
            std::string::npos);
  EXPECT_NE(ParseError({"--master-port", "70000", "a.py"}).find("not a TCP port"),
            std::string::npos);
  EXPECT_NE(ParseError({"--logs-specs", "x", "a.py"}).find("--logs-specs"), std::string::npos);
  EXPECT_NE(ParseError({"--rdzv-conf", "novalue", "a.py"}).find("<key>=<value>"),
            std::string::npos);
  EXPECT_NE(ParseError({"--numa-binding", "all", "a.py"}).find("invalid choice"),
            std::string::npos);
}

TEST(Cli, ParsedDetails) {
  LaunchOptions o =
      Parse({"--nnodes=2:4", "--local-ranks-filter=0,2", "--rdzv-conf=join_timeout=5,foo=bar",
             "--signals-to-handle=SIGTERM,SIGUSR1,USR2", "a.py"});
  EXPECT_EQ(o.min_nodes, 2);
  EXPECT_EQ(o.max_nodes, 4);
  EXPECT_EQ(o.local_ranks, (std::set<int>{0, 2}));
  EXPECT_EQ(o.rdzv_configs.at("join_timeout"), "5");
  EXPECT_EQ(o.rdzv_configs.at("foo"), "bar");
  EXPECT_EQ(o.signals, (std::vector<int>{SIGTERM, SIGUSR1, SIGUSR2}));
  EXPECT_EQ(Parse({"a.py"}, {{"TORCH_ELASTIC_SHUTDOWN_TIMEOUT", "5"}}).shutdown_timeout, 5);
  EXPECT_EQ(Parse({"--shutdown-timeout=2", "a.py"}, {{"TORCH_ELASTIC_SHUTDOWN_TIMEOUT", "5"}})
                .shutdown_timeout,
            2);
  LaunchOptions n = Parse({"--numa-binding=node", "--duplicate-stdout-filters=a,,b,c", "a.py"});
  EXPECT_EQ(n.numa_binding, "node");
  EXPECT_EQ(n.duplicate_stdout_filters, (std::vector<std::string>{"a,b", "c"}));
  EXPECT_EQ(n.warnings.size(), 2u);
  EXPECT_TRUE(Parse({"-h"}).help);
}

// strun's recovery flags: both spellings, both forms, explicit under their dest, no PET_ variable.
TEST(Cli, RecoveryFlags) {
  struct F {
    std::string dash, underscore, dest, value;
    std::function<double(const LaunchOptions&)> get;
  };
  std::vector<F> flags = {
      {"--startup-timeout", "--startup_timeout", "startup_timeout", "12.5",
       [](auto& o) { return o.startup_timeout; }},
      {"--hang-timeout", "--hang_timeout", "hang_timeout", "30",
       [](auto& o) { return o.hang_timeout; }},
      {"--hang-timeout-floor", "--hang_timeout_floor", "hang_timeout_floor", "7",
       [](auto& o) { return o.hang_timeout_floor; }},
      {"--hang-timeout-factor", "--hang_timeout_factor", "hang_timeout_factor", "2.5",
       [](auto& o) { return o.hang_timeout_factor; }},
      {"--restart-backoff", "--restart_backoff", "restart_backoff", "0",
       [](auto& o) { return o.restart_backoff; }},
      {"--restart-backoff-max", "--restart_backoff_max", "restart_backoff_max", "0.25",
       [](auto& o) { return o.restart_backoff_max; }},
      {"--max-same-step-failures", "--max_same_step_failures", "max_same_step_failures", "4",
       [](auto& o) { return double(o.max_same_step_failures); }},
  };
  LaunchOptions defaults = Parse({"a.py"});
  for (const auto& f : flags) {
    for (const std::string& name : {f.dash, f.underscore}) {
      SCOPED_TRACE(name);
      LaunchOptions a = Parse({name, f.value, "a.py"});
      EXPECT_DOUBLE_EQ(f.get(a), std::stod(f.value));
      EXPECT_EQ(a.explicit_options, (std::set<std::string>{f.dest}));
      EXPECT_DOUBLE_EQ(f.get(Parse({name + "=" + f.value, "a.py"})), std::stod(f.value));
    }
    std::string var = "PET_";
    for (char c : f.dest) var.push_back(char(std::toupper(c)));
    LaunchOptions o = Parse({"a.py"}, {{var, f.value}});
    EXPECT_DOUBLE_EQ(f.get(o), f.get(defaults)) << var;
    EXPECT_TRUE(o.explicit_options.empty()) << var;
  }
  EXPECT_DOUBLE_EQ(defaults.startup_timeout, 900);
  EXPECT_DOUBLE_EQ(defaults.hang_timeout, 0);
  EXPECT_DOUBLE_EQ(defaults.hang_timeout_floor, 60);
  EXPECT_DOUBLE_EQ(defaults.hang_timeout_factor, 5);
  EXPECT_DOUBLE_EQ(defaults.restart_backoff, 1);
  EXPECT_DOUBLE_EQ(defaults.restart_backoff_max, 60);
  EXPECT_EQ(defaults.max_same_step_failures, 2);
  // Zero is a valid back-off but not a valid timeout or factor.
  EXPECT_DOUBLE_EQ(Parse({"--restart-backoff-max=0", "a.py"}).restart_backoff_max, 0);
  EXPECT_EQ(ParseError({"--hang-timeout=0", "a.py"}),
            "argument --hang-timeout: must be greater than 0");
  EXPECT_EQ(ParseError({"--startup_timeout", "0", "a.py"}),
            "argument --startup-timeout: must be greater than 0");
  EXPECT_EQ(ParseError({"--hang-timeout-factor=0", "a.py"}),
            "argument --hang-timeout-factor: must be greater than 0");
  EXPECT_EQ(ParseError({"--hang-timeout-floor=-1", "a.py"}),
            "argument --hang-timeout-floor: invalid value '-1' (seconds, or a factor, >= 0)");
  EXPECT_EQ(ParseError({"--restart-backoff=inf", "a.py"}),
            "argument --restart-backoff: invalid value 'inf' (seconds, or a factor, >= 0)");
  EXPECT_EQ(ParseError({"--restart-backoff-max=nan", "a.py"}),
            "argument --restart-backoff-max: invalid value 'nan' (seconds, or a factor, >= 0)");
  EXPECT_EQ(ParseError({"--startup-timeout=x", "a.py"}),
            "argument --startup-timeout: invalid value 'x' (seconds, or a factor, >= 0)");
  EXPECT_EQ(ParseError({"--max-same-step-failures=0", "a.py"}),
            "argument --max-same-step-failures: must be at least 1");
  EXPECT_EQ(ParseError({"--max-same-step-failures=1.5", "a.py"}),
            "argument --max-same-step-failures: invalid int value: '1.5'");
}

// The exact text of every parse error (main prints it after "strun: error: " and exits 2).
TEST(Cli, ErrorMessagesExactly) {
  struct E {
    std::vector<std::string> args;
    Env env;
    std::string message;
  };
  std::vector<E> cases = {
      // Value forms and the spelling shown: the dash spelling, "-r/--redirects" for a short option.
      {{"--max_restarts", "x", "a.py"}, {}, "argument --max-restarts: invalid int value: 'x'"},
      {{"--max-r=x", "a.py"}, {}, "argument --max-restarts: invalid int value: 'x'"},
      {{"--node-rank", "2147483648", "a.py"},
       {},
       "argument --node-rank: invalid int value: '2147483648'"},
      {{"--shutdown-timeout=0x10", "a.py"},
       {},
       "argument --shutdown-timeout: invalid int value: '0x10'"},
      {{"--master-port=1_", "a.py"}, {}, "argument --master-port: invalid int value: '1_'"},
      {{"--master-port="}, {}, "argument --master-port: invalid int value: ''"},
      {{"--monitor-interval=fast", "a.py"},
       {},
       "argument --monitor-interval: invalid float value: 'fast'"},
      {{"--start_method=thread", "a.py"},
       {},
       "argument --start-method: invalid choice: 'thread' (choose from 'spawn', 'fork', "
       "'forkserver')"},
      {{"--numa-binding", "all", "a.py"},
       {},
       "argument --numa-binding: invalid choice: 'all' (choose from 'node', 'socket', 'exclusive', "
       "'core-complex')"},
      {{"--environment="}, {}, "argument --environment: expected an EDF name or path"},
      {{"--nnodes"}, {}, "argument --nnodes: expected one argument"},
      {{"--nproc_per_node", "--standalone", "a.py"},
       {},
       "argument --nproc-per-node: expected one argument"},
      {{"-r"}, {}, "argument -r/--redirects: expected one argument"},
      {{"-t", "-m", "a.py"}, {}, "argument -t/--tee: expected one argument"},
      {{"--tee"}, {}, "argument --tee: expected one argument"},
      {{"--standalone=1", "a.py"}, {}, "argument --standalone: ignored explicit argument '1'"},
      {{"--stand=", "a.py"}, {}, "argument --standalone: ignored explicit argument ''"},
      {{"--module=1", "a.py"}, {}, "argument --module: ignored explicit argument '1'"},
      {{"-m=1", "a.py"}, {}, "argument -m/--module: ignored explicit argument '1'"},
      {{"-hm=x", "a.py"}, {}, "argument -m/--module: ignored explicit argument 'x'"},
      {{"--help=1"}, {}, "argument --help: ignored explicit argument '1'"},
      // Unknown and ambiguous options (the candidates in table order, both spellings).
      {{"--bogus", "a.py"}, {}, "unrecognized arguments: --bogus"},
      {{"--bogus=1", "a.py"}, {}, "unrecognized arguments: --bogus"},
      {{"-x", "a.py"}, {}, "unrecognized arguments: -x"},
      {{"-mx", "a.py"}, {}, "unrecognized arguments: -mx"},
      {{"--n", "2", "a.py"},
       {},
       "ambiguous option: --n could match --nnodes, --nproc-per-node, --nproc_per_node, "
       "--no-python, --no_python, "
       "--node-rank, --node_rank, --numa-binding, --numa_binding"},
      {{"--hang-timeout-f=1", "a.py"},
       {},
       "ambiguous option: --hang-timeout-f could match --hang-timeout-floor, "
       "--hang-timeout-factor"},
      {{"--max", "a.py"},
       {},
       "ambiguous option: --max could match --max-restarts, --max_restarts, "
       "--max-same-step-failures, "
       "--max_same_step_failures"},
      // The training script.
      {{}, {}, "the following arguments are required: training_script"},
      {{"--"}, {}, "the following arguments are required: training_script"},
      {{"--standalone"}, {}, "the following arguments are required: training_script"},
      // PET_* values name the variable.
      {{"a.py"},
       {{"PET_MAX_RESTARTS", "many"}},
       "PET_MAX_RESTARTS=many (environment): invalid int value: 'many'"},
      {{"--max-restarts=1", "a.py"},
       {{"PET_MAX_RESTARTS", "many"}},
       "PET_MAX_RESTARTS=many (environment): invalid int value: 'many'"},
      {{"a.py"},
       {{"PET_MONITOR_INTERVAL", "x"}},
       "PET_MONITOR_INTERVAL=x (environment): invalid float value: 'x'"},
      {{"a.py"},
       {{"PET_START_METHOD", "x"}},
       "PET_START_METHOD=x (environment): invalid choice: 'x' (choose from 'spawn', 'fork', "
       "'forkserver')"},
      {{"a.py"},
       {{"PET_STANDALONE", "yes"}},
       "PET_STANDALONE=yes (environment): invalid value 'yes' (use 0 or 1)"},
      {{"a.py"},
       {{"PET_MASTER_PORT", "p"}},
       "PET_MASTER_PORT=p (environment): invalid int value: 'p'"},
      // Checks after parsing.
      {{"--node-rank", "-1", "a.py"}, {}, "--node-rank=-1: must be >= 0"},
      {{"--max-restarts", "-2", "a.py"}, {}, "--max-restarts=-2: must be >= 0"},
      {{"--monitor-interval=0", "a.py"}, {}, "--monitor-interval must be > 0"},
      {{"--shutdown-timeout=-1", "a.py"}, {}, "--shutdown-timeout must be >= 0"},
      {{"a.py"},
       {{"TORCH_ELASTIC_SHUTDOWN_TIMEOUT", "-1"}},
       "TORCH_ELASTIC_SHUTDOWN_TIMEOUT=-1: expected a number of seconds"},
      {{"--master-port=65536", "a.py"}, {}, "--master-port=65536: not a TCP port (0-65535)"},
      {{"--nnodes=x", "a.py"}, {}, "--nnodes=x: expected N or MIN:MAX with integers"},
      {{"--nnodes=1:2:3", "a.py"}, {}, "--nnodes=1:2:3 is not in \"MIN:MAX\" format"},
      {{"--nnodes=2:1", "a.py"}, {}, "--nnodes=2:1: needs 0 < MIN <= MAX"},
      {{"-r=", "a.py"},
       {},
       "--redirects= does not match <^[0123]$> or <^(\\d:[0123],)*(\\d:[0123])$> (e.g. 3, or "
       "0:1,1:2)"},
      {{"--rdzv-conf=a=1,=2", "a.py"}, {}, "--rdzv-conf: '=2' is not of the form <key>=<value>"},
      {{"--logs-specs=x", "a.py"},
       {},
       "--logs-specs=x: strun has only the default log layout (the option names a Python entry "
       "point); drop the flag"},
      {{"--signals-to-handle=TERM,SIGSTOP", "a.py"},
       {},
       "--signals-to-handle: SIGSTOP cannot be handled or forwarded"},
      {{"--no_python", "--module", "a"},
       {},
       "Don't use both the '--no-python' flag and the '--module' flag at the same time."},
  };
  for (const auto& c : cases) {
    std::string shown;
    for (const auto& a : c.args) shown += a + " ";
    for (const auto& [k, v] : c.env) shown += k + "=" + v + " ";
    SCOPED_TRACE(shown);
    EXPECT_EQ(ParseError(c.args, c.env), c.message);
  }
}

TEST(Cli, ValueFormsAndShortOptionClusters) {
  // Python int(): sign, surrounding whitespace, '_' between digits.
  EXPECT_EQ(Parse({"--max-restarts= +1_0 ", "a.py"}).max_restarts, 10);
  EXPECT_EQ(Parse({"--node-rank", "007", "a.py"}).node_rank, 7);
  EXPECT_EQ(Parse({"--master-port=0", "a.py"}).master_port, 0);
  EXPECT_DOUBLE_EQ(Parse({"--monitor-interval=1e-1", "a.py"}).monitor_interval, 0.1);
  // A value may start with '-' when it is a negative number, or be given inline.
  EXPECT_EQ(Parse({"--role", "-1", "a.py"}).role, "-1");
  EXPECT_EQ(Parse({"--role=-x", "a.py"}).role, "-x");
  EXPECT_EQ(Parse({"--role=", "a.py"}).role, "");
  EXPECT_EQ(Parse({"--rdzv-endpoint=h:1=2", "a.py"}).rdzv_endpoint, "h:1=2");
  // A script that looks like a negative number is the script.
  EXPECT_EQ(Parse({"-5", "x"}).training_script, "-5");
  // The last occurrence wins.
  LaunchOptions o = Parse({"--nnodes=2", "--nnodes", "3", "--duplicate_stderr_filters=a",
                           "--duplicate-stderr-filters=b,c", "a.py"});
  EXPECT_EQ(o.nnodes, "3");
  EXPECT_EQ(o.duplicate_stderr_filters, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(o.warnings.size(), 1u);
  // Clusters of short switches, ending in at most one short value option.
  o = Parse({"-mr3", "pkg"});
  EXPECT_TRUE(o.module);
  EXPECT_EQ(o.redirects, "3");
  EXPECT_EQ(o.explicit_options, (std::set<std::string>{"module", "redirects"}));
  o = Parse({"-mt", "1", "pkg"});
  EXPECT_EQ(o.tee, "1");
  // "-rm": "m" is -r's value, which the check after parsing rejects.
  EXPECT_EQ(ParseError({"-rm", "pkg"}),
            "--redirects=m does not match <^[0123]$> or <^(\\d:[0123],)*(\\d:[0123])$> (e.g. 3, or "
            "0:1,1:2)");
  // Help: any spelling, in a cluster, skips the checks after parsing but not the value checks.
  EXPECT_TRUE(Parse({"-mh"}).help);
  EXPECT_TRUE(Parse({"--he", "--nnodes=0"}).help);
  EXPECT_TRUE(Parse({"--nnodes=0", "--help"}).help);
  EXPECT_EQ(ParseError({"--max-restarts=x", "-h"}),
            "argument --max-restarts: invalid int value: 'x'");
  EXPECT_FALSE(Parse({"a.py", "-h"}).help);
  EXPECT_FALSE(Parse({"a.py"}, {{"PET_HELP", "1"}}).help);
  // Every choice is accepted.
  for (const std::string m : {"spawn", "fork", "forkserver"})
    EXPECT_EQ(Parse({"--start-method", m, "a.py"}).start_method, m);
  for (const std::string m : {"node", "socket", "exclusive", "core-complex"})
    EXPECT_EQ(Parse({"--numa_binding", m, "a.py"}).numa_binding, m);
}

TEST(Cli, ExplicitOptionsAndPetOnlyForTorchrunFlags) {
  // PET_X=0 leaves a switch off and not explicit; PET_X=2 turns it on.
  EXPECT_TRUE(Parse({"a.py"}, {{"PET_STANDALONE", "0"}}).explicit_options.empty());
  LaunchOptions o = Parse({"a.py"}, {{"PET_NO_PYTHON", " 2 "}});
  EXPECT_TRUE(o.no_python);
  EXPECT_EQ(o.explicit_options, (std::set<std::string>{"no_python"}));
  // Both spellings of an option have one dest.
  o = Parse({"--nproc_per_node=2", "--rdzv_id=j", "--master_addr=h", "--node_rank=1", "--nnodes=2",
             "-t3", "a.py"});
  EXPECT_EQ(o.explicit_options, (std::set<std::string>{"nproc_per_node", "rdzv_id", "master_addr",
                                                       "node_rank", "nnodes", "tee"}));
  o = Parse({"--numa-binding=socket", "--duplicate_stdout_filters=x", "--environment=e",
             "--logs_spe=", "-h"});
  EXPECT_EQ(o.explicit_options, (std::set<std::string>{"numa_binding", "duplicate_stdout_filters",
                                                       "environment", "logs_specs", "help"}));
  // Not torchrun's PET_ variables: --logs-specs, --numa-binding, --environment, -h.
  o = Parse({"a.py"}, {{"PET_LOGS_SPECS", "x"},
                       {"PET_NUMA_BINDING", "bad"},
                       {"PET_ENVIRONMENT", "e"},
                       {"PET_HELP", "1"}});
  EXPECT_TRUE(o.explicit_options.empty());
  EXPECT_FALSE(o.logs_specs);
  EXPECT_FALSE(o.numa_binding);
  // The duplicate filters do read PET_.
  EXPECT_EQ(Parse({"a.py"}, {{"PET_DUPLICATE_STDOUT_FILTERS", "a,b"}}).duplicate_stdout_filters,
            (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Parse({"a.py"}, {{"PET_DUPLICATE_STDERR_FILTERS", "c"}}).duplicate_stderr_filters,
            (std::vector<std::string>{"c"}));
}

TEST(Cli, StdSpec) {
  auto all = ParseStdSpec("3", "-r");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->For(0), 3);
  EXPECT_EQ(all->For(7), 3);
  auto per = ParseStdSpec("0:1,2:2", "-r");
  ASSERT_TRUE(per.ok());
  EXPECT_EQ(per->For(0), 1);
  EXPECT_EQ(per->For(1), 0);
  EXPECT_EQ(per->For(2), 2);
}

}  // namespace
}  // namespace strun::launcher
