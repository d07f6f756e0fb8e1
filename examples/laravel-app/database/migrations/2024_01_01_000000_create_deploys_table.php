<?php

use Illuminate\Database\Migrations\Migration;
use Illuminate\Database\Schema\Blueprint;
use Illuminate\Support\Facades\Schema;

// Anonymous class: later migrations added by tests can never clash by name.
return new class extends Migration
{
    public function up()
    {
        Schema::create('deploys', function (Blueprint $table) {
            $table->id();
            $table->string('release');
            $table->timestamps();
        });
    }

    public function down()
    {
        Schema::dropIfExists('deploys');
    }
};
